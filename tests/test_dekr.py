"""DEKR against the original implementation (golden data from tools/make_dekr_golden.py) and OpenMMLab's layout."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torchvision.ops import deform_conv2d

from hrnet_zoo.layers.adaptive import AdaptiveConvBlock, KeypointRegression
from hrnet_zoo.models.dekr import (
    DEKR,
    DEKR_CONFIGS,
    DEKRConfig,
    dekr_original_to_package,
    to_dekr_layout,
)

from .conftest import DATA

GRID = torch.tensor([[-1.0, -1, -1, 0, 0, 0, 1, 1, 1], [-1.0, 0, 1, -1, 0, 1, -1, 0, 1]])


@pytest.fixture(scope="module")
def tiny() -> tuple[DEKRConfig, dict[str, torch.Tensor], dict[str, np.ndarray]]:
    config = json.loads((DATA / "dekr_tiny_config.json").read_text())
    cfg = DEKRConfig.from_original(config["spec"], config["num_joints"], config["input_size"])
    weights = {
        k: v.float() if v.is_floating_point() else v
        for k, v in load_file(DATA / "dekr_tiny_original.safetensors").items()
    }
    return cfg, weights, dict(np.load(DATA / "dekr_tiny_io.npz"))


def assert_matches_golden(outputs: tuple[torch.Tensor, torch.Tensor], io: dict[str, np.ndarray]) -> None:
    for ours, name in zip(outputs, ("heatmap", "offset")):
        golden = torch.from_numpy(io[name])
        assert ours.shape == golden.shape, name
        torch.testing.assert_close(ours, golden, rtol=1e-4, atol=1e-4 * golden.abs().max().item(), msg=name)


def run(model: DEKR, io: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(io["input"]).float())


def test_golden_outputs_equal_the_original(tiny):
    cfg, weights, io = tiny
    model = DEKR(cfg)
    model.load_state_dict(weights)  # the original's layout, converted by the load hook
    heatmaps, offsets = run(model, io)
    assert heatmaps.shape == (1, cfg.num_joints + 1, 16, 16) and offsets.shape == (1, 2 * cfg.num_joints, 16, 16)
    assert_matches_golden((heatmaps, offsets), io)
    again = DEKR(cfg)
    again.load_state_dict(model.state_dict())  # the package's own layout
    assert_matches_golden(run(again, io), io)


def to_openmmlab(weights: dict[str, torch.Tensor], num_joints: int) -> dict[str, torch.Tensor]:
    """The original DEKR layout as mmpose 1.x's ``DEKRHead`` holds it: grouped convs, ``A = [T - I | t]``, the
    displacement negated (centre to keypoint), ConvModule's ``conv``/``bn`` names."""
    head = ("transition_", "head_heatmap.", "offset_")
    out = {f"backbone.{k}": v for k, v in weights.items() if not k.startswith(head)}
    for ours, theirs in (
        ("transition_heatmap", "heatmap_conv_layers.0"),
        ("transition_offset", "displacement_conv_layers.0"),
    ):
        for key, value in weights.items():
            if key.startswith(ours + "."):
                index, name = key[len(ours) + 1 :].split(".", 1)
                out[f"head.{theirs}.{'conv' if index == '0' else 'bn'}.{name}"] = value
    for key, value in weights.items():
        if key.startswith("head_heatmap.0.0."):
            out["head.heatmap_conv_layers.1." + key[len("head_heatmap.0.0.") :]] = value
        elif key.startswith("head_heatmap.1."):
            out["head.heatmap_conv_layers.2." + key[len("head_heatmap.1.") :]] = value
    joints = range(num_joints)
    for b in range(2):

        def per_joint(name: str, b: int = b) -> list[torch.Tensor]:
            return [weights[f"offset_feature_layers.{j}.{b}.{name}"] for j in joints]

        t_w, t_b = per_joint("transform_matrix_conv.weight"), per_joint("transform_matrix_conv.bias")
        s_w, s_b = per_joint("translation_conv.weight"), per_joint("translation_conv.bias")
        prefix = f"head.displacement_conv_layers.{b + 1}."
        out[prefix + "transform_matrix_conv.weight"] = torch.cat(
            [torch.cat([t[0:2], s[0:1], t[2:4], s[1:2]]) for t, s in zip(t_w, s_w)]
        )
        out[prefix + "transform_matrix_conv.bias"] = torch.cat(
            [torch.stack([t[0] - 1, t[1], s[0], t[2], t[3] - 1, s[1]]) for t, s in zip(t_b, s_b)]
        )
        out[prefix + "adapt_conv.weight"] = torch.cat(per_joint("adapt_conv.weight"))
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[prefix + f"norm.{name}"] = torch.cat(per_joint(f"bn.{name}"))
        out[prefix + "norm.num_batches_tracked"] = per_joint("bn.num_batches_tracked")[0]
        out[prefix + "regular_matrix"] = torch.cat([GRID, torch.ones(1, 9)])
    for name in ("weight", "bias"):
        out[f"head.displacement_conv_layers.3.{name}"] = -torch.cat(
            [weights[f"offset_final_layer.{j}.{name}"] for j in joints]
        )
    return out


def test_openmmlab_layout_loads_to_the_same_outputs(tiny):
    cfg, weights, io = tiny
    openmmlab = to_openmmlab(weights, cfg.num_joints)
    rescore = {"l1.weight": torch.randn(256, 74), "l1.bias": torch.randn(256), "l2.weight": torch.randn(256, 256)}
    rescore |= {"l2.bias": torch.randn(256), "l3.weight": torch.randn(1, 256), "l3.bias": torch.randn(1)}
    openmmlab |= {f"head.rescore_net.{k}": v for k, v in rescore.items()}
    assert to_dekr_layout(openmmlab)[1] == "openmmlab1"
    model = DEKR(cfg, rescore_channels=74)
    model.load_state_dict(openmmlab)
    assert_matches_golden(run(model, io), io)
    for key, value in rescore.items():
        assert torch.equal(model.rescore_net.state_dict()[key], value)
    assert model.rescore_net(torch.randn(3, 74)).shape == (3,)


def test_openmmlab_grouped_adaptive_block_computes_the_original_offsets(tiny):
    """mmpose's own forward (grouped 6-channel transform times the grid with a row of ones, no grid subtracted)
    on the converted weights equals the per-keypoint blocks."""
    cfg, weights, _ = tiny
    openmmlab = to_openmmlab(weights, cfg.num_joints)
    model = DEKR(cfg).eval()
    model.load_state_dict(weights)
    k, c = cfg.num_joints, cfg.offset_channels
    x = torch.randn(2, k * c, 6, 5)
    p = "head.displacement_conv_layers.1."
    affine = F.conv2d(
        x,
        openmmlab[p + "transform_matrix_conv.weight"],
        openmmlab[p + "transform_matrix_conv.bias"],
        padding=1,
        groups=k,
    )
    b, _, h, w = x.shape
    offset = affine.permute(0, 2, 3, 1).reshape(b, h, w, k, 2, 3) @ openmmlab[p + "regular_matrix"]
    offset = offset.transpose(4, 5).reshape(b, h, w, k * 18).permute(0, 3, 1, 2)
    y = deform_conv2d(x, offset, openmmlab[p + "adapt_conv.weight"], padding=1)
    norm = [openmmlab[p + f"norm.{n}"] for n in ("running_mean", "running_var", "weight", "bias")]
    expected = torch.relu(F.batch_norm(y, *norm) + x)
    with torch.no_grad():
        ours = torch.cat(
            [branch.blocks[0](g) for branch, g in zip(model.head.offset_regression.branches, x.split(c, 1))], 1
        )
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def published_keys(name: str) -> dict[str, list[int]]:
    return dict(json.loads(gzip.decompress((DATA / name).read_bytes())))


@pytest.mark.parametrize(
    ("arch", "keys"),
    [("dekr_hrnet_w32", "dekr_keys_w32_512x512.json.gz"), ("dekr_hrnet_w48", "dekr_keys_w48_640x640.json.gz")],
)
def test_published_configurations_map_onto_the_original_keys(arch, keys):
    original = published_keys(keys)
    ours = {k: list(v.shape) for k, v in DEKR(DEKR_CONFIGS[arch], device="meta").state_dict().items()}
    converted = {dekr_original_to_package(k): shape for k, shape in original.items()}
    assert len(converted) == len(original)
    assert converted == ours


def test_w32_has_the_papers_parameter_count():
    params = sum(p.numel() for p in DEKR(DEKR_CONFIGS["dekr_hrnet_w32"], device="meta").parameters())
    print(f"DEKR-W32: {params / 1e6:.2f}M parameters (paper: 29.6M)")
    assert round(params / 1e6, 1) == 29.6


def bilinear(image: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """``image`` (C, H, W) at ``(y, x)``, zero outside (deformable convolution's sampling)."""
    height, width = image.shape[-2:]
    y0, x0 = math.floor(y), math.floor(x)
    value = torch.zeros(image.shape[0], dtype=image.dtype)
    for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
        if 0 <= yy < height and 0 <= xx < width:
            value += (1 - abs(y - yy)) * (1 - abs(x - xx)) * image[:, yy, xx]
    return value


def test_adaptive_block_equals_hand_written_sampling():
    torch.manual_seed(3)
    block = AdaptiveConvBlock(2).double().eval()
    with torch.no_grad():
        for param in block.parameters():
            param.normal_()
        block.transform_matrix_conv.weight.mul_(0.2)
        block.transform_matrix_conv.bias.copy_(torch.tensor([0.8, 0.3, -0.2, 1.1]))
        block.translation_conv.weight.mul_(0.2)
        block.bn.running_mean.normal_()
        block.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    with torch.no_grad():
        transform, translation = block.transform_matrix_conv(x)[0], block.translation_conv(x)[0]
        ours = block(x)[0]
    weight = block.adapt_conv.weight
    conv = torch.zeros(2, 4, 5, dtype=torch.float64)
    for i in range(4):
        for j in range(5):
            t = transform[:, i, j].reshape(2, 2)
            for tap in range(9):
                dy, dx = t @ GRID[:, tap].double() + translation[:, i, j]
                sample = bilinear(x[0], i + dy.item(), j + dx.item())
                conv[:, i, j] += weight[:, :, tap // 3, tap % 3].detach() @ sample
    bn = block.bn
    expected = (conv - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
    expected = torch.relu(expected * bn.weight.detach()[:, None, None] + bn.bias.detach()[:, None, None] + x[0])
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-10)


def test_zero_transform_collapses_the_taps_onto_the_centre():
    """The original's initialisation: with a zero transform every tap reads the centre pixel (a 1x1 conv)."""
    model = DEKR(DEKRConfig.from_original(json.loads((DATA / "dekr_tiny_config.json").read_text())["spec"], 5))
    block = model.head.offset_regression.branches[0].blocks[0]
    x = torch.randn(1, block.channels, 6, 6)
    assert torch.equal(block.offsets(x), (-GRID.t()).reshape(18, 1, 1).expand(1, 18, 6, 6))
    with torch.no_grad():
        expected = F.conv2d(x, block.adapt_conv.weight.sum((2, 3), keepdim=True))
        torch.testing.assert_close(block.adapt_conv(x, block.offsets(x)), expected, rtol=1e-5, atol=1e-6)


def test_regression_branches_are_independent():
    regression = KeypointRegression(3, 4, num_blocks=1).eval()
    x = torch.randn(1, 12, 5, 5)
    changed = x.clone()
    changed[:, 4:8] += 1
    with torch.no_grad():
        a, b = regression(x), regression(changed)
    assert torch.equal(a[:, :2], b[:, :2]) and torch.equal(a[:, 4:], b[:, 4:])
    assert not torch.equal(a[:, 2:4], b[:, 2:4])


def test_inputs_are_not_modified(tiny):
    cfg, _, io = tiny
    x = torch.from_numpy(io["input"]).float()
    before = x.clone()
    DEKR(cfg).eval()(x)
    assert torch.equal(x, before)
    block, features = AdaptiveConvBlock(3), torch.randn(1, 3, 5, 5)
    kept = features.clone()
    block(features)
    assert torch.equal(features, kept)


@pytest.mark.parametrize(
    ("module", "x", "match"),
    [
        (AdaptiveConvBlock(4), torch.randn(1, 3, 5, 5), "expects 4 channels, got 3"),
        (AdaptiveConvBlock(4), torch.randn(4, 5, 5), r"4D \(B, 4, H, W\)"),
        (AdaptiveConvBlock(4), torch.ones(1, 4, 5, 5, dtype=torch.long), "floating point"),
        (KeypointRegression(3, 4), torch.randn(1, 11, 5, 5), "expects 12 channels"),
    ],
)
def test_input_checks(module, x, match):
    with pytest.raises(ValueError, match=match):
        module(x)


def test_model_and_config_checks(tiny):
    cfg = tiny[0]
    with pytest.raises(ValueError, match="multiples of 32"):
        DEKR(cfg)(torch.randn(1, 3, 48, 64))
    with pytest.raises(ValueError, match="unknown DEKR head block 'bottleneck'"):
        DEKRConfig(cfg.backbone, offset_block="bottleneck")
    with pytest.raises(ValueError, match="final_kernel"):
        DEKRConfig(cfg.backbone, final_kernel=5)
    spec = json.loads((DATA / "dekr_tiny_config.json").read_text())["spec"]
    spec["HEAD_OFFSET"]["DILATION_RATE"] = 2
    with pytest.raises(ValueError, match="DILATION_RATE"):
        DEKRConfig.from_original(spec, 5)
