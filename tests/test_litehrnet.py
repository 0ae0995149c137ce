"""Lite-HRNet: equal to the reference implementation (golden data from tools/make_litehrnet_golden.py), in its
checkpoint layouts, and its blocks on their own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from hrnet_zoo.layers import MultiScaleFusion
from hrnet_zoo.layers.lite import (
    ConditionalChannelWeighting,
    CrossResolutionWeighting,
    IterativeHead,
    LiteFusion,
    LiteHRModule,
    LiteStem,
    LiteTransition,
    ShuffleUnit,
    SpatialWeighting,
    channel_shuffle,
)
from hrnet_zoo.models.litehrnet import (
    LITE_HRNET_18,
    LITE_HRNET_30,
    LiteHRNet,
    LiteHRNetConfig,
    LiteHRNetPose,
    LiteStageSpec,
    litehrnet_to_package_layout,
)

DATA = Path(__file__).parent / "data"
TINY = ["tiny", "tiny_naive"]


def to_openmmlab1(reference: dict[str, Tensor]) -> dict[str, Tensor]:
    """The reference (mmpose 0.x ``TopDown``) layout as mmpose 1.x names it: ``HeatmapHead``'s ``head.final_layer``."""
    return {re.sub(r"^keypoint_head\.final_layer\.", "head.final_layer.", k): v for k, v in reference.items()}


def tiny(name: str) -> tuple[LiteHRNetPose, dict[str, Tensor], dict[str, np.ndarray]]:
    record = json.loads((DATA / f"litehrnet_{name}.json").read_text())
    model = LiteHRNetPose(LiteHRNetConfig.from_reference(record["extra"]), num_joints=record["num_joints"]).eval()
    return model, load_file(DATA / f"litehrnet_{name}.safetensors"), dict(np.load(DATA / f"litehrnet_{name}_io.npz"))


def run(model: nn.Module, x: np.ndarray, dtype: torch.dtype = torch.float32) -> Tensor:
    with torch.no_grad():
        return model.to(dtype)(torch.from_numpy(x).to(dtype)).double()


def assert_relative(actual: Tensor, expected: Tensor, rtol: float) -> None:
    assert actual.shape == expected.shape
    assert (actual - expected).abs().max() <= rtol * expected.abs().max()


@pytest.mark.parametrize("name", TINY)
def test_tiny_reproduces_the_reference(name):
    model, reference_state, io = tiny(name)
    model.load_state_dict(reference_state)
    expected = torch.from_numpy(io["output"])
    assert_relative(run(model, io["input"]), expected, 1e-4)
    assert_relative(run(model, io["input"], torch.float64), expected, 1e-12)


@pytest.mark.parametrize("name", TINY)
def test_every_layout_loads_to_the_same_output(name):
    model, reference_state, io = tiny(name)
    model.load_state_dict(reference_state)
    expected = run(model, io["input"])
    package_state = {k: v.clone() for k, v in model.state_dict().items()}
    bare = {k.removeprefix("backbone."): v for k, v in reference_state.items() if k.startswith("backbone.")}
    layouts = {
        "openmmlab1": to_openmmlab1(reference_state),
        "ddp": {"module." + k: v for k, v in reference_state.items()},
        "package": package_state,
    }
    for layout, state in layouts.items():
        fresh = tiny(name)[0]
        fresh.load_state_dict(state)
        assert torch.equal(run(fresh, io["input"]), expected), layout
    backbone = LiteHRNet(model.backbone.cfg).eval()
    backbone.load_state_dict({k.removeprefix("backbone."): v for k, v in litehrnet_to_package_layout(bare).items()})
    x = torch.from_numpy(io["input"])
    with torch.no_grad():
        assert torch.equal(backbone(x)[0], model.float().backbone(x)[0])


def test_the_renames_are_idempotent_and_keep_unknown_keys():
    model, reference_state, _ = tiny("tiny")
    package = litehrnet_to_package_layout(reference_state)
    assert package.keys() == model.state_dict().keys()
    assert litehrnet_to_package_layout(package) == package
    with pytest.raises(RuntimeError, match=r"extra\.weight"):
        model.load_state_dict({**reference_state, "extra.weight": torch.zeros(1)})


@pytest.mark.parametrize(("name", "cfg"), [("18", LITE_HRNET_18), ("30", LITE_HRNET_30)])
def test_full_size_keys_and_shapes_are_the_reference(name, cfg):
    record = json.loads((DATA / f"litehrnet_{name}_keys.json").read_text())
    assert LiteHRNetConfig.from_reference(record["extra"]) == cfg
    with torch.device("meta"):
        model = LiteHRNetPose(cfg, num_joints=record["num_joints"])
    recorded = litehrnet_to_package_layout({k: tuple(shape) for k, shape in record["keys"]})
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == list(recorded.items())
    assert sum(p.numel() for p in model.parameters()) == record["num_params"]


def test_a_random_state_in_the_reference_layout_loads_into_lite_hrnet_18():
    record = json.loads((DATA / "litehrnet_18_keys.json").read_text())
    state = {k: torch.rand(shape) + 0.5 for k, shape in record["keys"]}
    state = {k: v.long() if k.endswith("num_batches_tracked") else v for k, v in state.items()}
    model = LiteHRNetPose(LITE_HRNET_18, num_joints=17).eval()
    model.load_state_dict(state)
    assert torch.equal(model.head.weight, state["keypoint_head.final_layer.weight"])
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 17, 16, 16)


def test_lite_hrnet_18_params_and_gmacs_at_256x192():
    """The README gives 1.1M parameters and 205.2M "FLOPs" (multiply-accumulates of every layer, by torchstat)."""
    with torch.device("meta"):
        model = LiteHRNetPose(LITE_HRNET_18, num_joints=17).eval()
        x = torch.empty(1, 3, 256, 192)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    params = sum(p.numel() for p in model.parameters())
    gmacs = counter.get_total_flops() / 2e9
    assert params == 1_130_769
    assert gmacs == pytest.approx(0.1986, abs=5e-4)  # convolutions only; torchstat adds BN, ReLU, pooling


def test_lite_hrnet_30_params():
    assert sum(p.numel() for p in LiteHRNetPose(LITE_HRNET_30, num_joints=17).parameters()) == 1_763_717


def test_configs_reject_what_the_reference_cannot_build():
    with pytest.raises(ValueError, match="two branches"):
        LiteStageSpec(1, 2, (40,))
    with pytest.raises(ValueError, match="fewer branches"):
        LiteHRNetConfig(stages=(LiteStageSpec(1, 2, (8, 16, 32)), LiteStageSpec(1, 2, (8, 16))))
    with pytest.raises(ValueError, match="module_type"):
        LiteStageSpec(1, 2, (8, 16), module_type="LITE")
    with pytest.raises(ValueError, match="multiples of 32"):
        LiteHRNet(LITE_HRNET_18)(torch.randn(1, 3, 100, 96))


# --- blocks ------------------------------------------------------------------------------------------------------


def branches(channels, height=32, width=24, batch=2):
    return [torch.randn(batch, c, height // 2**i, width // 2**i) for i, c in enumerate(channels)]


def randomise(module: nn.Module) -> nn.Module:
    """Non-trivial BN statistics, eval mode."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, std=0.1)
            m.running_mean.normal_(std=0.1)
            m.running_var.uniform_(0.5, 1.5)
    return module.eval()


MULTI_BRANCH = [
    lambda: CrossResolutionWeighting([8, 16, 32], ratio=4),
    lambda: ConditionalChannelWeighting([8, 16, 32], reduce_ratio=8),
    lambda: LiteFusion([8, 16, 32]),
    lambda: LiteHRModule([8, 16, 32], num_blocks=2, reduce_ratio=8),
    lambda: LiteHRModule([8, 16, 32], num_blocks=1, module_type="naive"),
    lambda: IterativeHead([8, 16, 32]),
]


@pytest.mark.parametrize("make", MULTI_BRANCH, ids=["crw", "ccw", "fusion", "module", "naive_module", "head"])
def test_multi_branch_blocks_keep_shapes_check_inputs_and_never_modify_them(make):
    block = randomise(make())
    xs = branches([8, 16, 32])
    copies = [x.clone() for x in xs]
    with torch.no_grad():
        ys = block(xs)
    assert len(xs) == 3 and all(torch.equal(x, c) for x, c in zip(xs, copies))
    expected = getattr(block, "out_channels", [8, 16, 32])
    assert [tuple(y.shape) for y in ys] == [(2, c, 32 // 2**i, 24 // 2**i) for i, c in enumerate(expected)]
    with pytest.raises(ValueError, match="3 branch tensors"):
        block(xs[:2])
    with pytest.raises(ValueError, match="must have 16 channels"):
        block([xs[0], torch.randn(2, 12, 16, 12), xs[2]])


@pytest.mark.parametrize(
    ("block", "x", "shape"),
    [
        (SpatialWeighting(16, ratio=4), torch.randn(2, 16, 8, 6), (2, 16, 8, 6)),
        (ShuffleUnit(16, 16), torch.randn(2, 16, 8, 6), (2, 16, 8, 6)),
        (ShuffleUnit(16, 32, stride=2), torch.randn(2, 16, 8, 6), (2, 32, 4, 3)),
        (LiteStem(3, 16, 24, expand_ratio=2), torch.randn(2, 3, 32, 24), (2, 24, 8, 6)),
    ],
)
def test_single_tensor_blocks_keep_shapes_check_inputs_and_never_modify_them(block, x, shape):
    block = randomise(block)
    copy = x.clone()
    with torch.no_grad():
        assert block(x).shape == shape
    assert torch.equal(x, copy)
    with pytest.raises(ValueError, match=rf"expects a \(B, {x.shape[1]}, H, W\) tensor"):
        block(torch.randn(2, x.shape[1] + 2, 8, 6))


def test_block_arguments_are_checked():
    with pytest.raises(ValueError, match="channels must be even"):
        ConditionalChannelWeighting([8, 15], reduce_ratio=8)
    with pytest.raises(ValueError, match="at least 1"):
        SpatialWeighting(2, ratio=4)
    with pytest.raises(ValueError, match="stride 1"):
        ShuffleUnit(16, 32)
    with pytest.raises(ValueError, match="at least two branches"):
        LiteHRModule([8], num_blocks=1)
    with pytest.raises(ValueError, match="out_channels"):
        LiteStem(3, 16, 8)


def test_channel_shuffle_by_hand():
    x = torch.randn(2, 6, 3, 2)
    expected = torch.stack([x[:, 0], x[:, 3], x[:, 1], x[:, 4], x[:, 2], x[:, 5]], dim=1)
    assert torch.equal(channel_shuffle(x, 2), expected)
    assert torch.equal(channel_shuffle(x, 3), x[:, [0, 2, 4, 1, 3, 5]])
    with pytest.raises(ValueError, match="multiple of 4"):
        channel_shuffle(x, 4)


def test_spatial_weighting_by_hand():
    block = SpatialWeighting(16, ratio=4)
    for p in block.parameters():
        nn.init.normal_(p)
    x = torch.randn(2, 16, 5, 3)
    mean = x.mean(dim=(2, 3))
    hidden = torch.relu(mean @ block.conv1.conv.weight.flatten(1).T + block.conv1.conv.bias)
    weights = torch.sigmoid(hidden @ block.conv2.conv.weight.flatten(1).T + block.conv2.conv.bias)
    torch.testing.assert_close(block(x), x * weights[:, :, None, None])


def test_lite_fusion_counts_branch_zero_twice_as_the_reference_does():
    fuse = randomise(LiteFusion([8, 16]))
    x0, x1 = branches([8, 16])
    with torch.no_grad():
        y0, y1 = fuse([x0, x1])
        m = 2 * x0 + fuse.paths[0][1](x1)
        torch.testing.assert_close(y0, torch.relu(m))
        torch.testing.assert_close(y1, torch.relu(2 * fuse.paths[1][0](m) + x1))


def test_separable_fusion_option_keeps_the_default():
    plain, separable = MultiScaleFusion([8, 16, 32]), MultiScaleFusion([8, 16, 32], separable=True)
    assert [type(m).__name__ for m in plain.paths[2][0].modules() if not isinstance(m, nn.Sequential)] == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "Conv2d",
        "BatchNorm2d",
    ]
    depthwise = separable.paths[2][0][0][0]
    assert depthwise.groups == 8 and depthwise.stride == (2, 2)
    assert [len(step) for step in separable.paths[2][0]] == [5, 4]  # ReLU between the steps, none after the last
    assert plain.paths[0][1].state_dict().keys() == separable.paths[0][1].state_dict().keys()


def test_lite_transition_adds_separable_branches_with_relu():
    transition = randomise(LiteTransition([16], [8, 16, 32]))
    assert [len(step) for step in transition.branches[2]] == [5, 5]
    ys = transition([torch.randn(2, 16, 32, 24)])
    assert [tuple(y.shape) for y in ys] == [(2, 8, 32, 24), (2, 16, 16, 12), (2, 32, 8, 6)]
    assert all((y >= 0).all() for y in ys)


def test_iterative_head_by_hand():
    head = randomise(IterativeHead([8, 16]))
    x0, x1 = branches([8, 16])
    with torch.no_grad():
        low = head.projects[0](x1)
        up = F.interpolate(low, size=x0.shape[-2:], mode="bilinear", align_corners=True)
        y0, y1 = head([x0, x1])
        torch.testing.assert_close(y1, low)
        torch.testing.assert_close(y0, head.projects[1](x0 + up))
