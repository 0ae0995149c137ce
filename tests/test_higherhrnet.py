"""HigherHRNet equals the reference (HRNet/HigherHRNet-Human-Pose-Estimation): golden outputs of a tiny network, the
reference's and OpenMMLab 0.x's checkpoint keys, the paper's sizes, and clear input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import Tensor

from hrnet_zoo.layers.deconv import DeconvBlock
from hrnet_zoo.models.higherhrnet import (
    HIGHERHRNET_CONFIGS,
    HigherHeadSpec,
    HigherHRNet,
    HigherHRNetConfig,
    to_higherhrnet_layout,
)

from .conftest import DATA


@pytest.fixture(scope="module")
def reference_config() -> dict:
    return json.loads((DATA / "higherhrnet_tiny_config.json").read_text())


@pytest.fixture(scope="module")
def reference_io() -> dict[str, np.ndarray]:
    return dict(np.load(DATA / "higherhrnet_tiny_io.npz"))


@pytest.fixture(scope="module")
def reference_weights() -> dict[str, Tensor]:
    return load_file(str(DATA / "higherhrnet_tiny.safetensors"))


@pytest.fixture
def tiny(reference_config: dict) -> HigherHRNet:
    return HigherHRNet(HigherHRNetConfig.from_original(reference_config))


def run(model: HigherHRNet, image: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        return [y.numpy() for y in model.eval()(torch.from_numpy(image).float())]


def assert_close(outputs: list[np.ndarray], io: dict[str, np.ndarray]) -> None:
    """Every output equal to the reference's to 1e-4, relative to the output's scale."""
    expected = [io[f"output{i}"] for i in range(len(io) - 1)]
    assert [y.shape for y in outputs] == [y.shape for y in expected]
    for y, ref in zip(outputs, expected):
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def to_openmmlab(reference: dict[str, Tensor]) -> dict[str, Tensor]:
    """Reference keys as mmpose 0.x's ``AssociativeEmbedding`` holds them: ``AEHigherResolutionHead`` (same module
    structure as the reference's head) under ``keypoint_head.``, the HRNet backbone under ``backbone.``."""
    head = ("final_layers.", "deconv_layers.")
    return {("keypoint_head." if k.startswith(head) else "backbone.") + k: v for k, v in reference.items()}


def test_config_from_original(reference_config):
    cfg = HigherHRNetConfig.from_original(reference_config)
    assert [s.num_channels for s in cfg.backbone.stages] == [(4, 8), (4, 8, 16), (4, 8, 16, 32)]
    head = cfg.head
    assert (head.num_joints, head.tag_channels, head.final_conv_kernel) == (3, 3, 3)
    assert (head.deconv_channels, head.deconv_kernels, head.num_basic_blocks) == ((8,), (4,), 2)
    assert head.cat_output == (True,) and head.with_tags == (True, False)
    assert head.output_channels == [6, 3]


def test_tiny_reference_reproduced(tiny, reference_weights, reference_io):
    tiny.load_state_dict(reference_weights)  # strict, reference layout accepted directly
    image = reference_io["input"].copy()
    outputs = run(tiny, image)
    assert [y.shape for y in outputs] == [(1, 6, 24, 16), (1, 3, 48, 32)]  # 96x64: a multiple of 32, not of 64
    assert_close(outputs, reference_io)
    np.testing.assert_array_equal(image, reference_io["input"])  # the input is not modified


def test_tiny_reference_sensitive_to_single_weights(tiny, reference_weights, reference_io):
    """The comparison can fail: a basic block after the deconvolution moves the 1/2 output only, a fusion weight
    both."""
    nudged = dict(reference_weights)
    nudged["deconv_layers.0.2.0.conv2.weight"] = reference_weights["deconv_layers.0.2.0.conv2.weight"].float() + 0.05
    tiny.load_state_dict(nudged)
    low, high = run(tiny, reference_io["input"])
    np.testing.assert_allclose(low, reference_io["output0"], rtol=1e-4, atol=1e-4)
    assert np.abs(high - reference_io["output1"]).max() > 1e-2
    nudged = dict(reference_weights)
    nudged["stage4.1.fuse_layers.0.3.0.weight"] = reference_weights["stage4.1.fuse_layers.0.3.0.weight"].float() + 0.05
    tiny.load_state_dict(nudged)
    for y, key in zip(run(tiny, reference_io["input"]), ("output0", "output1")):
        assert np.abs(y - reference_io[key]).max() > 1e-2


def test_openmmlab_layout_loads_to_the_same_outputs(tiny, reference_weights, reference_io):
    openmmlab = to_openmmlab(reference_weights)
    assert to_higherhrnet_layout(openmmlab)[1] == "openmmlab"
    tiny.load_state_dict(openmmlab)
    assert_close(run(tiny, reference_io["input"]), reference_io)


def test_package_layout_round_trips(tiny, reference_weights):
    converted, layout = to_higherhrnet_layout(reference_weights)
    assert layout == "original"
    assert "head.deconv_layers.0.1.conv1.weight" in converted and "head.final_layers.1.bias" in converted
    own = tiny.state_dict()
    assert to_higherhrnet_layout(own) == (own, "hrnet_zoo")
    with pytest.raises(ValueError, match="not a HigherHRNet checkpoint"):
        to_higherhrnet_layout({"fc.weight": torch.zeros(1)})


@pytest.mark.parametrize(
    ("keys_file", "name"),
    [
        ("higherhrnet_keys_coco_w32_512.json", "higherhrnet_w32"),
        ("higherhrnet_keys_coco_w48_640.json", "higherhrnet_w48"),
    ],
)
def test_reference_checkpoint_keys_map_exactly(keys_file, name):
    keys = json.loads((DATA / keys_file).read_text())
    model = HigherHRNet(HIGHERHRNET_CONFIGS[name], device="meta")
    reference = {k: torch.empty(shape, device="meta") for k, shape in keys}
    converted, _ = to_higherhrnet_layout(reference)
    # Same keys in the same order, same shapes: the module structure matches the reference's one to one.
    assert list(converted) == list(model.state_dict())
    assert [tuple(v.shape) for v in converted.values()] == [tuple(v.shape) for v in model.state_dict().values()]


@pytest.mark.parametrize(("name", "params_m"), [("higherhrnet_w32", 28.6), ("higherhrnet_w48", 63.8)])
def test_parameter_counts_match_the_paper(name, params_m):
    model = HigherHRNet(HIGHERHRNET_CONFIGS[name], device="meta")
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == params_m
    assert model.cfg.head.output_channels == [34, 17] and model.reductions == [4, 2]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (torch.zeros(3, 64, 64), "4D"),
        (torch.zeros(1, 1, 64, 64), "3 input channels"),
        (torch.zeros(1, 3, 80, 64), "multiples of 32"),
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), "floating point"),
    ],
)
def test_bad_inputs_are_clear_errors(tiny, image, message):
    with pytest.raises(ValueError, match=message) as error:
        tiny(image)
    assert "HigherHRNet" in str(error.value)


@pytest.mark.parametrize(
    "spec",
    [
        dict(final_conv_kernel=5),
        dict(deconv_channels=(32, 32)),
        dict(with_tags=(True,)),
        dict(num_joints=0),
    ],
)
def test_inconsistent_head_specs_are_refused(spec):
    with pytest.raises(ValueError):
        HigherHeadSpec(**spec)


@pytest.mark.parametrize("kernel", [2, 3, 4])
def test_deconv_block_doubles_the_size(kernel):
    block = DeconvBlock(5, 4, kernel, num_blocks=1)
    assert block(torch.randn(1, 5, 6, 7)).shape == (1, 4, 12, 14)
    with pytest.raises(ValueError, match="kernel_size"):
        DeconvBlock(5, 4, 5)


def test_every_parameter_gets_a_gradient(tiny):
    outputs = tiny.train()(torch.randn(1, 3, 64, 64))
    sum(y.square().mean() for y in outputs).backward()
    assert [n for n, p in tiny.named_parameters() if p.grad is None] == []
