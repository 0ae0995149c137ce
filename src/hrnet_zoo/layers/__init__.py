"""HRNet building blocks, usable on their own in any network (no registry knowledge here): HRNet's, Lite-HRNet's
(conditional channel weighting, shuffle units), DEKR's adaptive convolutions and HigherHRNet's deconvolution."""

from .adaptive import AdaptiveConvBlock, KeypointRegression, adaptive_offsets
from .blocks import BasicBlock, BlockType, Bottleneck, get_block, make_blocks
from .concat import ResizeConcat
from .deconv import DeconvBlock
from .fusion import MultiScaleFusion, downsample_path, separable_conv_bn, upsample_path
from .hr_module import HRModule
from .lite import (
    ConditionalChannelWeighting,
    ConvBNAct,
    CrossResolutionWeighting,
    IterativeHead,
    LiteFusion,
    LiteHRModule,
    LiteStem,
    LiteTransition,
    ModuleType,
    ShuffleUnit,
    SpatialWeighting,
    channel_shuffle,
)
from .stem import Stem
from .transition import Transition

__all__ = [
    "AdaptiveConvBlock",
    "BasicBlock",
    "BlockType",
    "Bottleneck",
    "ConditionalChannelWeighting",
    "ConvBNAct",
    "CrossResolutionWeighting",
    "DeconvBlock",
    "HRModule",
    "IterativeHead",
    "KeypointRegression",
    "LiteFusion",
    "LiteHRModule",
    "LiteStem",
    "LiteTransition",
    "ModuleType",
    "MultiScaleFusion",
    "ResizeConcat",
    "ShuffleUnit",
    "SpatialWeighting",
    "Stem",
    "Transition",
    "adaptive_offsets",
    "channel_shuffle",
    "downsample_path",
    "get_block",
    "make_blocks",
    "separable_conv_bn",
    "upsample_path",
]
