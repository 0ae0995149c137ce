"""HRNet building blocks, usable on their own in any network (no registry knowledge here)."""

from .blocks import BasicBlock, BlockType, Bottleneck, get_block, make_blocks
from .concat import ResizeConcat
from .fusion import MultiScaleFusion, downsample_path, upsample_path
from .hr_module import HRModule
from .stem import Stem
from .transition import Transition

__all__ = [
    "BasicBlock",
    "BlockType",
    "Bottleneck",
    "HRModule",
    "MultiScaleFusion",
    "ResizeConcat",
    "Stem",
    "Transition",
    "downsample_path",
    "get_block",
    "make_blocks",
    "upsample_path",
]
