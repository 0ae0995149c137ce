"""Optimising models for inference: BatchNorm folded into the convolutions, channels-last memory format."""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.ops.misc import FrozenBatchNorm2d

from ..layers import BasicBlock, Bottleneck, ConvBNAct, Stem

__all__ = ["HRNET_CONTAINERS", "fold_batch_norms", "optimize_for_inference"]

#: The containers of HRNet's (and Lite-HRNet's) blocks in which a convolution registered right before a BatchNorm is
#: applied right before it.
HRNET_CONTAINERS: tuple[type[nn.Module], ...] = (nn.Sequential, BasicBlock, Bottleneck, Stem, ConvBNAct)


def fold_batch_norms(model: nn.Module, containers: tuple[type[nn.Module], ...] = HRNET_CONTAINERS) -> int:
    """Fold every BatchNorm that directly follows a convolution into it, in place; returns how many were folded.

    Pairs are taken from ``containers`` (by default the HRNet ones: ``nn.Sequential``, the residual blocks and the
    stem), where a convolution registered right before a BatchNorm of matching width is always applied right
    before it; give the container types of another network for which that holds (torchvision's ResNet
    ``Bottleneck``, say). The folded BatchNorm (or frozen BatchNorm, see :func:`hrnet_zoo.train.freeze_stages`)
    becomes an ``nn.Identity``. The model must be in eval mode (running statistics are used).
    """
    if model.training:
        raise ValueError(
            "fold_batch_norms needs an eval-mode model (call model.eval()): training mode uses batch statistics"
        )
    folded = 0
    for module in list(model.modules()):
        if not isinstance(module, containers):
            continue
        for (conv_name, conv), (bn_name, bn) in itertools.pairwise(list(module.named_children())):
            is_norm = isinstance(bn, (nn.BatchNorm2d, FrozenBatchNorm2d))
            if isinstance(conv, nn.Conv2d) and is_norm and bn.weight.shape[0] == conv.out_channels:
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
                folded += 1
    return folded


def optimize_for_inference(model: nn.Module, channels_last: bool = True, inplace: bool = False) -> nn.Module:
    """A faster copy of a model for inference, equal to its eval mode up to float rounding.

    The copy is put in eval mode, its BatchNorms are folded into their convolutions (:func:`fold_batch_norms`)
    and, by default, its weights switched to channels-last, which the CPU and GPU convolution kernels prefer.
    Outputs stay within float rounding of the unfused eval model (tested to 1e-4 of the output scale); inputs
    need no change. The model passed in, e.g. one still training, is left untouched unless ``inplace=True``.

    Args:
        model: An hrnet_zoo model (or any network of HRNet blocks).
        channels_last: Also convert to the channels-last memory format.
        inplace: Modify ``model`` itself instead of a copy.

    Example:
        >>> fast = hrnet_zoo.deploy.optimize_for_inference(hrnet_zoo.create_model("hrnet_w32_pose", pretrained=True))
        >>> heatmaps = fast(torch.randn(8, 3, 256, 192))
    """
    target = (model if inplace else copy.deepcopy(model)).eval()
    fold_batch_norms(target)
    if channels_last:
        target = target.to(memory_format=torch.channels_last)
    return target.requires_grad_(False)
