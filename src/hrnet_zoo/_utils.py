"""Small jobs the package does in many places, written once: safe writes, the default device, reading JSON and
state dicts with a clear error, SHA-256 prefixes in file names, and the COCO keypoint result record.

The bottom floor: imports nothing of hrnet_zoo.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor

__all__ = [
    "coco_keypoint_result",
    "default_device",
    "is_partial_of_dead_process",
    "partial_path",
    "process_runs",
    "read_json",
    "read_state_dict",
    "sha256_prefix",
    "terminate_as_interrupt",
    "writing",
]

_PARTIAL = re.compile(r"\.partial-(\d+)")
_SAFETENSORS_HEADER = 8  # a safetensors file starts with its header's length (8 bytes, little-endian), then '{'
#: ``NAME-<hex>.EXT`` (torchvision, torch.hub) or ``NAME-<8 hex>_<date>.pth`` (OpenMMLab): the hash's first digits.
_SHA256_IN_NAME = re.compile(r"-([0-9a-f]{6,64})(?:_\d{8})?\.[A-Za-z0-9]+$")


def partial_path(path: Path) -> Path:
    """The hidden file a write of ``path`` goes to first: ``.STEM.partial-PID.SUFFIX`` beside it (the suffix stays
    last, so writers that go by it, such as video containers, still recognise the format)."""
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def is_partial_of_dead_process(path: Path) -> bool:
    """Whether ``path`` is a :func:`partial_path` left by a process that no longer runs (a killed write)."""
    match = _PARTIAL.search(path.name)
    if match is None:
        return False
    return not process_runs(int(match.group(1)))


def process_runs(pid: int) -> bool:
    """Whether the process ``pid`` runs (this one included), on any platform."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but belongs to someone else
        return True
    return True


@contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Write ``path`` all at once: the body writes the yielded partial file, which replaces ``path`` when the
    body succeeds and is removed when it fails, so ``path`` is never half-written.

    Example:
        >>> with writing(Path("results.json")) as partial:
        ...     partial.write_text(text)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    try:
        yield partial
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_bf16_units() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AMX tiles or AVX512-BF16), where bf16 convolutions run
    several times faster than float32; elsewhere they are emulated and slower."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # a torch without these probes: assume none
        return False


def fastest_amp(device: torch.device) -> torch.dtype | None:
    """The reduced precision ``device`` runs in hardware: bfloat16 on CUDA and on CPUs with bf16 units, else
    ``None`` (float32)."""
    return torch.bfloat16 if device.type == "cuda" or cpu_has_bf16_units() else None


def check_amp(amp: torch.dtype | None, device: torch.device) -> None:
    """Refuse a reduced-precision dtype that ``device`` cannot run fast, saying what it can: bfloat16 on CPUs with
    bf16 units (:func:`cpu_has_bf16_units`), float16 and bfloat16 on CUDA."""
    if amp is None:
        return
    if device.type == "cuda" and amp in (torch.float16, torch.bfloat16):
        return
    if device.type == "cpu" and amp == torch.bfloat16:
        if cpu_has_bf16_units():
            return
        raise ValueError(
            "amp=torch.bfloat16 on a CPU needs bf16 units (AMX or AVX512-BF16), which this CPU lacks: there it "
            "would be slower than float32; leave amp unset"
        )
    raise ValueError(
        f"amp={amp} is not supported on {device.type}: use torch.bfloat16 (CPU or CUDA) or torch.float16 (CUDA)"
    )


def read_json(path: str | os.PathLike, what: str) -> Any:
    """The JSON document in ``path``; ``what`` names the file in errors (``"annotation file"``).

    Raises:
        FileNotFoundError: No such file (a folder is named as such).
        ValueError: Not UTF-8 JSON.
    """
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{what} {str(path)!r} is a folder, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{what} {str(path)!r} is not JSON ({err})") from err


def _is_safetensors(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(_SAFETENSORS_HEADER + 1)
    if len(head) < _SAFETENSORS_HEADER + 1 or head[-1:] != b"{":
        return False
    return int.from_bytes(head[:_SAFETENSORS_HEADER], "little") < path.stat().st_size


def read_state_dict(path: str | os.PathLike) -> object:
    """The object stored in a weights file: safetensors (recognised by its header, whatever the suffix) or a
    PyTorch file read with ``weights_only=True`` (no code runs).

    Raises:
        ValueError: The file is damaged or of another kind (the message names it).
    """
    path = Path(path)
    try:
        if _is_safetensors(path):
            return load_file(str(path))
        with path.open("rb") as f:  # a file object: torch.load would otherwise go by the file's suffix
            return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as err:  # safetensors and torch raise many different types for damaged files
        raise ValueError(
            f"could not read checkpoint {str(path)!r} ({type(err).__name__}: {str(err)[:200]}); the file may be "
            "truncated or corrupted, or not a .safetensors / PyTorch weights file"
        ) from err


def sha256_prefix(file_name: str) -> str | None:
    """The leading SHA-256 digits a released file carries in its name (``resnet50-0676ba61.pth``,
    ``hrnet_w32_coco_256x192-c78dce93_20200708.pth``), or ``None``."""
    match = _SHA256_IN_NAME.search(file_name)
    return match.group(1) if match else None


def coco_keypoint_result(
    image_id: int, keypoints: Sequence[Sequence[float]] | Tensor, score: float, category_id: int = 1, **extra: Any
) -> dict[str, Any]:
    """One pose in COCO keypoint results format (``(K, 3)`` x, y, score rounded to 3 decimals), as pycocotools'
    ``loadRes`` reads it; ``extra`` fields (``bbox``, ``box_score``) are added as given."""
    flat = [round(float(v), 3) for joint in keypoints for v in joint]
    return {"image_id": image_id, "category_id": category_id, "keypoints": flat, "score": score, **extra}


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM is handled as Ctrl-C is (a ``KeyboardInterrupt``: partial files are cleaned
    up, finished ones kept); the previous handler comes back afterwards. Signal handlers belong to the main
    thread: elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
