"""The building blocks on their own: shapes, semantics against direct computations, errors, compile/trace/export."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hrnet_zoo.layers import (
    BasicBlock,
    Bottleneck,
    HRModule,
    MultiScaleFusion,
    Stem,
    Transition,
    get_block,
    make_blocks,
)


def branches(channels, height=32, width=24, batch=2):
    return [torch.randn(batch, c, height // 2**i, width // 2**i) for i, c in enumerate(channels)]


def set_identity(module: nn.Module) -> None:
    """1x1 convs -> identity, 3x3 convs -> centre tap (picks pixels), BN -> identity in eval mode."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            with torch.no_grad():
                m.weight.zero_()
                k = m.kernel_size[0] // 2
                for c in range(min(m.in_channels, m.out_channels)):
                    m.weight[c, c, k, k] = 1.0
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()
            m.reset_running_stats()
            m.eps = 0.0
    module.eval()


@pytest.mark.parametrize(
    ("block", "in_channels", "channels", "stride", "out_shape"),
    [
        (BasicBlock, 32, 32, 1, (2, 32, 16, 12)),
        (BasicBlock, 16, 32, 2, (2, 32, 8, 6)),
        (Bottleneck, 64, 64, 1, (2, 256, 16, 12)),
        (Bottleneck, 256, 64, 1, (2, 256, 16, 12)),
    ],
)
def test_block_shapes_and_projection(block, in_channels, channels, stride, out_shape):
    b = block(in_channels, channels, stride)
    assert b(torch.randn(2, in_channels, 16, 12)).shape == out_shape
    needs_projection = stride != 1 or in_channels != channels * block.expansion
    assert (b.downsample is not None) == needs_projection


def test_block_helpers():
    assert get_block("BASIC") is BasicBlock and get_block(Bottleneck) is Bottleneck
    with pytest.raises(ValueError, match="unknown block type 'resnext'"):
        get_block("resnext")
    stack = make_blocks(Bottleneck, 64, 64, 4)
    assert len(stack) == 4 and stack[0].downsample is not None and stack[1].downsample is None
    with pytest.raises(ValueError, match="at least 1"):
        make_blocks(BasicBlock, 8, 8, 0)


def test_fusion_output_shapes():
    fuse = MultiScaleFusion([32, 64, 128])
    ys = fuse(branches([32, 64, 128]))
    assert [tuple(y.shape) for y in ys] == [(2, 32, 32, 24), (2, 64, 16, 12), (2, 128, 8, 6)]
    assert fuse.out_channels == [32, 64, 128]
    single = MultiScaleFusion([32, 64, 128], num_out=1)
    assert [tuple(y.shape) for y in single(branches([32, 64, 128]))] == [(2, 32, 32, 24)]


def test_fusion_matches_direct_computation():
    """With identity convs, output i is relu(sum of inputs resampled to branch i): nearest up, strided picks down."""
    fuse = MultiScaleFusion([4, 4, 4])
    set_identity(fuse)
    xs = branches([4, 4, 4])
    with torch.no_grad():
        ys = fuse(xs)
    up = lambda x, f: x.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3)  # noqa: E731
    expected0 = F.relu(xs[0] + up(xs[1], 2) + up(xs[2], 4))
    # Downsampling chains have a ReLU between steps: 0 -> 2 is relu(x0[::2, ::2])[::2, ::2].
    expected2 = F.relu(F.relu(xs[0][..., ::2, ::2])[..., ::2, ::2] + xs[1][..., ::2, ::2] + xs[2])
    expected1 = F.relu(xs[0][..., ::2, ::2] + xs[1] + up(xs[2], 2))
    torch.testing.assert_close(ys[0], expected0)
    torch.testing.assert_close(ys[1], expected1)
    torch.testing.assert_close(ys[2], expected2)


def test_fusion_does_not_modify_inputs():
    xs = branches([8, 16])
    copies = [x.clone() for x in xs]
    HRModule([8, 16], [8, 16], [1, 1])(xs)
    MultiScaleFusion([8, 16])(xs)
    for x, c in zip(xs, copies):
        assert torch.equal(x, c)


@pytest.mark.parametrize(
    ("xs", "match"),
    [
        (branches([32, 64]), "expects 3 branch tensors, got 2"),
        (branches([32, 48, 128]), "branch 1 must have 64 channels, got 48"),
        ([torch.randn(1, 32, 30, 24), torch.randn(1, 64, 15, 12), torch.randn(1, 128, 8, 6)], "multiples of 4"),
        (torch.randn(1, 32, 32, 32), "expects a list of branch tensors"),
    ],
)
def test_fusion_bad_input(xs, match):
    with pytest.raises(ValueError, match=match):
        MultiScaleFusion([32, 64, 128])(xs)


def test_fusion_bad_arguments():
    with pytest.raises(ValueError, match="num_out must be between 1 and 2"):
        MultiScaleFusion([8, 16], num_out=3)


def test_hr_module():
    module = HRModule([16, 32], [8, 16], [2, 1], block="bottleneck")
    assert module.out_channels == [32, 64]
    ys = module(branches([16, 32]))
    assert [tuple(y.shape) for y in ys] == [(2, 32, 32, 24), (2, 64, 16, 12)]
    assert HRModule([8, 16], [8, 16], [1, 1], multi_scale_output=False).out_channels == [8]
    single = HRModule([8], [8], [1])
    assert single.fuse is None and single(branches([8]))[0].shape == (2, 8, 32, 24)
    with pytest.raises(ValueError, match="one entry per branch"):
        HRModule([8, 16], [8], [1, 1])


def test_transition():
    t = Transition([256], [32, 64])
    ys = t([torch.randn(1, 256, 32, 24)])
    assert [tuple(y.shape) for y in ys] == [(1, 32, 32, 24), (1, 64, 16, 12)]
    keep = Transition([32, 64], [32, 64, 128, 256])
    assert isinstance(keep.branches[0], nn.Identity) and len(keep.branches[3]) == 2
    xs = branches([32, 64])
    ys = keep(xs)
    assert ys[0] is xs[0] and [tuple(y.shape[1:]) for y in ys[2:]] == [(128, 8, 6), (256, 4, 3)]
    with pytest.raises(ValueError, match="keeps or adds branches"):
        Transition([32, 64], [32])


def test_stem():
    assert Stem(3, 64)(torch.randn(1, 3, 64, 48)).shape == (1, 64, 16, 12)


class CustomNet(nn.Module):
    """A user's own network mixing HRNet pieces: two resolutions exchanging information."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = Stem(3, 16)
        self.split = Transition([16], [16, 32])
        self.body = HRModule([16, 32], [16, 32], [1, 1])
        self.fuse = MultiScaleFusion([16, 32], num_out=1)
        self.out = nn.Conv2d(16, 3, 1)

    def forward(self, x):
        return self.out(self.fuse(self.body(self.split([self.stem(x)])))[0])


def test_blocks_inside_a_custom_network_train():
    net = CustomNet()
    y = net(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 3, 16, 16)
    y.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_trace_and_export_match_eager():
    fuse = MultiScaleFusion([4, 8, 16]).eval()
    xs = branches([4, 8, 16])
    expected = fuse(xs)
    traced = torch.jit.trace(fuse, (xs,), strict=False)
    exported = torch.export.export(fuse, (xs,)).module()
    for got in (traced(xs), exported(xs)):
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b)


def test_compile_full_graph():
    module = HRModule([4, 8], [4, 8], [1, 1]).eval()
    xs = branches([4, 8])
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    for a, b in zip(compiled(xs), module(xs)):
        torch.testing.assert_close(a, b)
