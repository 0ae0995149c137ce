"""Writing result files safely: nothing the user did not name is overwritten, no input is ever replaced, nothing
is written through a symbolic link, and JSON never holds NaN or Infinity.

A path that may not be written raises :class:`~hrnet_zoo.errors.OutputRefusedError`, whose ``reason`` says why.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._utils import partial_path, process_runs, writing
from ..errors import OutputRefusedError

__all__ = [
    "JsonArrayStream",
    "check_output_dir",
    "claim_run_folder",
    "finite_records",
    "plan_outputs",
    "run_folder",
    "write_json",
]

_logger = logging.getLogger("hrnet_zoo")
#: The file that marks a run folder as taken while its run starts (:func:`claim_run_folder`); removed after.
_CLAIM = ".hrnet_zoo-claim"


def check_output_dir(path: str | os.PathLike) -> Path:
    """The output folder, checked (it is created by the first write, once everything else has succeeded).

    Raises:
        ValueError: ``path`` is empty.
        OutputRefusedError: The path exists and is not a folder (``reason="not_a_folder"``), or is a symbolic link
            to nothing (``reason="symlink"``).
    """
    if not str(path):
        raise ValueError("the output folder's name is empty")
    folder = Path(path)
    if folder.is_symlink() and not folder.exists():
        message = f"output folder {str(folder)!r} is a symbolic link to nothing ({os.readlink(folder)})"
        raise OutputRefusedError(folder, "symlink", message)
    if folder.exists() and not folder.is_dir():
        raise OutputRefusedError(
            folder, "not_a_folder", f"output folder {str(folder)!r} is an existing file, not a folder"
        )
    return folder


def _fresh_folders(folder: Path) -> Iterator[Path]:
    """``folder`` itself, then ``folder-2``, ``folder-3``...; a folder without a name of its own (``.``, ``/``)
    cannot be numbered, so it is refused as it stands."""
    yield folder
    if folder.name in ("", ".", ".."):
        message = f"output folder {str(folder)!r} holds files, and has no name to number a fresh folder after"
        raise OutputRefusedError(folder, "exists", message)
    number = 2
    while True:
        yield folder.with_name(f"{folder.name}-{number}")
        number += 1


def _is_empty_folder(folder: Path) -> bool:
    """A real folder holding nothing but a run's claim."""
    return folder.is_dir() and not folder.is_symlink() and all(p.name == _CLAIM for p in folder.iterdir())


def _claim(folder: Path) -> bool:
    """Make ``folder`` this run's: its claim file is created exclusively, so of two runs only one succeeds, and
    only while the folder holds nothing else (an earlier run's results)."""
    if not folder.is_dir() or folder.is_symlink():
        return False
    claim = folder / _CLAIM
    try:
        descriptor = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        if _claimant(claim) is None or process_runs(_claimant(claim)):  # a run under way (or being claimed)
            return False
        claim.unlink(missing_ok=True)  # left by a run that was killed: the folder is free again
        return _claim(folder)
    except PermissionError as err:
        raise OutputRefusedError(folder, "not_writable", f"output folder {str(folder)!r} is not writable") from err
    with os.fdopen(descriptor, "w") as f:
        f.write(str(os.getpid()))
    if _is_empty_folder(folder):
        return True
    claim.unlink()
    return False


def _claimant(claim: Path) -> int | None:
    """The process id a claim file records (``None`` while it is being written)."""
    try:
        text = claim.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def run_folder(path: str | os.PathLike, exist_ok: bool = False) -> Path:
    """The folder of a new run: ``path`` itself when it does not exist, is empty, or ``exist_ok``; otherwise the
    first of ``path-2``, ``path-3``... that does not exist, so an earlier run's results are never mixed in.

    Nothing is created: use :func:`claim_run_folder` where two runs may start at once.

    Raises:
        OutputRefusedError: ``path`` is an existing file (``reason="not_a_folder"``), a link to nothing
            (``"symlink"``), or a folder holding files with no name to number (``"exists"``).
    """
    folder = check_output_dir(path)
    if exist_ok or _is_empty_folder(folder):
        return folder
    return next(f for f in _fresh_folders(folder) if not f.exists() and not f.is_symlink())


@contextmanager
def claim_run_folder(path: str | os.PathLike, exist_ok: bool = False) -> Iterator[Path]:
    """Claim the folder of a new run atomically, as :func:`run_folder` picks it: each candidate is created with
    ``mkdir`` and taken with a claim file made exclusively inside it (removed when the body ends), so two runs
    started together never share a folder. An empty folder (one the user made for the run) is taken as it is;
    with ``exist_ok``, ``path`` is used whatever it holds. When the body fails, a folder created here that is
    still empty is removed.

    Raises:
        OutputRefusedError: As :func:`run_folder`.

    Example:
        >>> with claim_run_folder("runs/match") as folder:  # runs/match, or runs/match-2 if it holds a run
        ...     estimator.run(["match.mp4"], folder)
    """
    folder, created, claimed = check_output_dir(path), False, False
    if not exist_ok:
        for candidate in _fresh_folders(folder):
            try:
                candidate.mkdir(parents=True)
                created = True
            except FileExistsError:
                created = False  # an earlier run's, an empty folder made for this run, or one just claimed
            if _claim(candidate):
                folder, claimed = candidate, True
                break
        if folder != Path(path):
            _logger.info("%s holds an earlier run; writing to %s", path, folder)
    try:
        yield folder
    except BaseException:
        if created and _is_empty_folder(folder):
            (folder / _CLAIM).unlink(missing_ok=True)
            folder.rmdir()
        raise
    finally:
        if claimed:
            (folder / _CLAIM).unlink(missing_ok=True)


def plan_outputs(paths: Sequence[Path], inputs: Iterable[str | os.PathLike], overwrite: bool) -> list[Path]:
    """Check that ``paths`` may be written, before anything is: no input, no link, no existing file unless
    ``overwrite``, no two outputs with the same name.

    Returns:
        ``paths``, as a list.

    Raises:
        OutputRefusedError: Naming the first offending path, with ``reason`` ``"symlink"``, ``"input"``,
            ``"duplicate"`` or ``"exists"``.
    """
    protected = {Path(p).resolve() for p in inputs}
    seen: set[Path] = set()
    for path in paths:
        resolved = path.resolve()
        if path.is_symlink():
            message = f"refusing to write {path}: it is a symbolic link (to {resolved}); remove it first"
            raise OutputRefusedError(path, "symlink", message)
        if resolved in protected:
            raise OutputRefusedError(path, "input", f"refusing to write {path}: it is one of the inputs")
        if resolved in seen:
            message = f"two outputs would be written to {path}: give inputs with different file names"
            raise OutputRefusedError(path, "duplicate", message)
        if path.exists() and not overwrite:
            raise OutputRefusedError(path, "exists", f"refusing to replace {path}: it exists")
        seen.add(resolved)
    return list(paths)


def finite_records(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The records whose numbers are all finite, and how many were left out."""
    kept, dropped = [], 0
    for record in records:
        values = [v for value in record.values() for v in (value if isinstance(value, list) else [value])]
        if all(math.isfinite(v) for v in values if isinstance(v, float)):
            kept.append(record)
        else:
            dropped += 1
    return kept, dropped


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as strict JSON (NaN or Infinity raise ``ValueError``), replacing the file atomically."""
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"
    with writing(path) as partial:
        partial.write_text(text)


class JsonArrayStream:
    """Write a JSON document whose one growing array is streamed item by item, so memory stays flat.

    The text is ``head``, the items separated by commas, then ``tail`` (e.g. ``head="["``, ``tail="]"`` for a
    plain list). It goes to a hidden partial file that :meth:`close` renames to ``path``; :meth:`discard` removes
    it instead. Items are strict JSON (NaN or Infinity raise ``ValueError``).
    """

    def __init__(self, path: Path, head: str = "[", tail: str = "]") -> None:
        self.path = path
        self.count = 0
        self._tail = tail
        path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = partial_path(path)
        self._file = self._partial.open("w")
        self._file.write(head)

    def add(self, item: Any) -> None:
        """Append one item to the array."""
        self._file.write(("," if self.count else "") + "\n" + json.dumps(item, allow_nan=False))
        self.count += 1

    def close(self) -> None:
        """Finish the document and put it in place."""
        self._file.write("\n" + self._tail + "\n")
        self._file.close()
        self._partial.replace(self.path)

    def discard(self) -> None:
        """Drop the unfinished document."""
        self._file.close()
        self._partial.unlink(missing_ok=True)
