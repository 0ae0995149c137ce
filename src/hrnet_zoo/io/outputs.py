"""Writing result files safely: nothing the user did not name is overwritten, no input is ever replaced, nothing
is written through a symbolic link, and JSON never holds NaN or Infinity.

A path that may not be written raises :class:`~hrnet_zoo.errors.OutputRefusedError`, whose ``reason`` says why.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .._utils import partial_path, writing
from ..errors import OutputRefusedError

__all__ = ["JsonArrayStream", "check_output_dir", "finite_records", "plan_outputs", "run_folder", "write_json"]


def check_output_dir(path: str | os.PathLike) -> Path:
    """The output folder, checked (it is created by the first write, once everything else has succeeded).

    Raises:
        OutputRefusedError: The path exists and is not a folder (``reason="not_a_folder"``).
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputRefusedError(
            folder, "not_a_folder", f"output folder {str(folder)!r} is an existing file, not a folder"
        )
    return folder


def run_folder(path: str | os.PathLike, exist_ok: bool = False) -> Path:
    """The folder of a new run: ``path`` itself when it does not exist, is empty, or ``exist_ok``; otherwise the
    first of ``path-2``, ``path-3``... that does not exist, so an earlier run's results are never mixed in.

    Raises:
        OutputRefusedError: ``path`` is an existing file (``reason="not_a_folder"``).
    """
    folder = check_output_dir(path)
    if exist_ok or not folder.exists() or not any(folder.iterdir()):
        return folder
    number = 2
    while (candidate := folder.with_name(f"{folder.name}-{number}")).exists():
        number += 1
    return candidate


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
