"""Pretrained weights: checkpoint files, downloads (Hugging Face Hub, upstream URLs) and publishing."""

from .checkpoint import CheckpointMismatchError, load_checkpoint, load_state_dict_checked, read_checkpoint
from .download import load_pretrained

__all__ = [
    "CheckpointMismatchError",
    "load_checkpoint",
    "load_pretrained",
    "load_state_dict_checked",
    "read_checkpoint",
]
