"""In-graph decoding (:class:`hrnet_zoo.deploy.decode_graph.HeatmapDecoder`) against the codec's ``decode``."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import hrnet_zoo
from hrnet_zoo.codec import BottomUpCodec, HeatmapCodec
from hrnet_zoo.deploy.decode_graph import DECODED_OUTPUT_NAMES, HeatmapDecoder, with_decoding

CODECS = {
    "argmax": HeatmapCodec((256, 192)),
    "msra+dark": HeatmapCodec((256, 192), decoding="dark"),
    "dark-96x72": HeatmapCodec.dark((384, 288)),  # blur kernel 17
    "udp": HeatmapCodec.udp((256, 192)),
    "udp-reflect": HeatmapCodec.udp((256, 192), blur_padding="reflect"),
}
#: In-graph DARK may sum its blur in another order than the codec (ONNX Runtime does): heatmap pixels.
DARK_TOLERANCE = 1e-3


class GivenHeatmaps(nn.Module):
    """A stand-in model whose "images" are the heatmaps it returns."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.offset


def peaked_heatmaps(batch: int, joints: int, size: tuple[int, int], seed: int = 0) -> Tensor:
    """Gaussians at random sub-pixel positions (some on or past the border) plus noise, with special channels:
    joint 0 all negative, joint 1 all zero, joint 2 two equal maxima (the first wins), joint 3 a corner peak, joint 4
    a maximum of exactly 0 inside the map, joints 5 and 6 peaks two pixels from the right and bottom borders, joints
    7 and 8 peaks on them, joint 9 a peak one pixel from the top."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    cx = torch.rand(batch, joints, 1, 1, generator=g) * (w + 1) - 1
    cy = torch.rand(batch, joints, 1, 1, generator=g) * (h + 1) - 1
    sigma = 1.5 + torch.rand(batch, joints, 1, 1, generator=g)
    maps = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
    maps = maps + 0.02 * torch.randn(batch, joints, h, w, generator=g)
    maps[:, 0] -= 2
    maps[:, 1] = 0
    maps[:, 2] = 0.01 * torch.rand(batch, h, w, generator=g)
    maps[:, 2, h // 2, w // 3] = maps[:, 2, h // 3, w // 2] = 0.9
    maps[:, 3] = torch.exp(-(xs**2 + ys**2) / 8)
    maps[:, 4] = -1 - torch.rand(batch, h, w, generator=g)
    maps[:, 4, h // 2, w // 2] = 0
    maps[:, 5] = torch.exp(-((xs - (w - 2.2)) ** 2 + (ys - h / 2) ** 2) / 8)
    maps[:, 6] = torch.exp(-((xs - w / 2) ** 2 + (ys - (h - 1.8)) ** 2) / 8)
    maps[:, 7] = torch.exp(-((xs - (w - 1.2)) ** 2 + (ys - h / 3) ** 2) / 8)
    maps[:, 8] = torch.exp(-((xs - w / 3) ** 2 + (ys - (h - 1.2)) ** 2) / 8)
    maps[:, 9] = torch.exp(-((xs - w / 2) ** 2 + (ys - 1.2) ** 2) / 8)
    return maps


def codec_keypoints(codec: HeatmapCodec, heatmaps: Tensor) -> Tensor:
    coords, scores = codec.decode(heatmaps)
    return torch.cat([coords, scores.unsqueeze(-1)], dim=-1)


def assert_matches_codec(keypoints: Tensor, codec: HeatmapCodec, heatmaps: Tensor) -> None:
    expected = codec_keypoints(codec, heatmaps)
    assert keypoints.shape == expected.shape
    torch.testing.assert_close(keypoints[..., 2], expected[..., 2], rtol=0, atol=0)  # the raw maxima
    atol = 1e-5 if codec.decoding == "argmax" else DARK_TOLERANCE
    torch.testing.assert_close(keypoints[..., :2], expected[..., :2], rtol=0, atol=atol, equal_nan=True)


@pytest.mark.parametrize("name", list(CODECS))
def test_matches_codec_decode(name):
    codec = CODECS[name]
    heatmaps = peaked_heatmaps(4, 17, codec.heatmap_size)
    decoder = HeatmapDecoder(GivenHeatmaps(), codec).eval()
    with torch.no_grad():
        out_heatmaps, keypoints = decoder(heatmaps)
    torch.testing.assert_close(out_heatmaps, heatmaps, rtol=0, atol=0)
    assert keypoints.shape == (4, 17, 3) and keypoints.dtype == heatmaps.dtype
    assert_matches_codec(keypoints, codec, heatmaps)
    if codec.decoding == "argmax":
        no_positive = keypoints[:, [0, 1, 4], :2]
        torch.testing.assert_close(no_positive, torch.zeros(4, 3, 2), rtol=0, atol=0)
        h, w = codec.heatmap_size
        first = torch.tensor([[w // 2, h // 3]] * 4, dtype=torch.float32)  # the first of the equal maxima, row-major
        torch.testing.assert_close(keypoints[:, 2, :2].round(), first, rtol=0, atol=0)


def test_real_model_default_codec():
    model = hrnet_zoo.create_model("hrnet_w18_small_pose").eval()
    decoder = with_decoding(model)
    assert not decoder.training and decoder.train().model.training and not decoder.eval().model.training
    images = torch.randn(2, 3, *model.pose_meta.input_size)
    with torch.no_grad():
        heatmaps, keypoints = decoder(images)
        torch.testing.assert_close(heatmaps, model(images))
    assert keypoints.shape == (2, model.pose_meta.num_joints, 3)
    assert_matches_codec(keypoints, model.pose_meta.codec, heatmaps)
    dark = HeatmapCodec.dark(model.pose_meta.input_size)
    with torch.no_grad():
        heatmaps, keypoints = with_decoding(model, dark)(images)
    assert_matches_codec(keypoints, dark, heatmaps)


def test_real_model_other_input_size():
    model = hrnet_zoo.create_model("hrnet_w18_small_pose").eval()
    codec = model.pose_meta.at_input_size((128, 96)).codec
    images = torch.randn(1, 3, 128, 96)
    with pytest.raises(ValueError, match="do not match the codec"):
        with_decoding(model)(images)
    with torch.no_grad():
        heatmaps, keypoints = with_decoding(model, codec)(images)
    assert_matches_codec(keypoints, codec, heatmaps)


@pytest.mark.parametrize("name", ["argmax", "msra+dark", "udp-reflect"])  # "udp": test_torch_export_dynamic_batch
def test_onnx_runtime_matches_codec(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    codec = CODECS[name]
    decoder = HeatmapDecoder(GivenHeatmaps(), codec).eval()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        decoder,
        (peaked_heatmaps(2, 17, codec.heatmap_size, seed=1),),
        str(path),
        dynamo=True,
        opset_version=19,
        input_names=["images"],
        output_names=list(DECODED_OUTPUT_NAMES),
        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},),
        verbose=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(DECODED_OUTPUT_NAMES)
    for batch in (1, 3):
        heatmaps = peaked_heatmaps(batch, 17, codec.heatmap_size, seed=batch + 10)
        out_heatmaps, keypoints = session.run(None, {"images": heatmaps.numpy()})
        np.testing.assert_array_equal(out_heatmaps, heatmaps.numpy())
        assert keypoints.shape == (batch, 17, 3)
        assert_matches_codec(torch.from_numpy(keypoints), codec, heatmaps)


def test_torch_export_dynamic_batch():
    codec = CODECS["udp"]
    decoder = HeatmapDecoder(GivenHeatmaps(), codec).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    example = (peaked_heatmaps(2, 17, codec.heatmap_size),)
    program = torch.export.export(decoder, example, dynamic_shapes=({0: batch},))
    heatmaps = peaked_heatmaps(5, 17, codec.heatmap_size, seed=3)
    _, keypoints = program.module()(heatmaps)
    assert_matches_codec(keypoints, codec, heatmaps)


def test_refuses_bottom_up_and_missing_codec():
    bottom_up = GivenHeatmaps()
    bottom_up.pose_meta = types.SimpleNamespace(codec=BottomUpCodec())
    with pytest.raises(ValueError, match=r"HeatmapCodec.*outside the graph"):
        with_decoding(bottom_up)
    with pytest.raises(ValueError, match="HeatmapCodec"):
        with_decoding(GivenHeatmaps())


def test_refuses_reflect_blur_wider_than_heatmaps():
    codec = HeatmapCodec.udp((32, 32), blur_padding="reflect", blur_kernel_size=17)  # 8x8 heatmaps, pad 8
    with pytest.raises(RuntimeError):
        codec.decode(torch.rand(1, 2, 8, 8))  # the codec cannot decode them either
    with pytest.raises(ValueError, match="blur_padding='reflect'"):
        HeatmapDecoder(GivenHeatmaps(), codec)
