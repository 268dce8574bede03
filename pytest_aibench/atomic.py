"""The one writer of files: each file is written under a temporary name and renamed into place,
so readers never see half a file and an interrupted run leaves the earlier file as it was; JSON
is strict (no NaN or Infinity tokens)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """The one way the plugin writes a file: into a temporary name beside ``path``, renamed
    over it only when the block ends without an error, so readers never see half a file and
    an error (or an interrupted run) leaves the earlier file as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            yield cast("BinaryIO", out)
        os.chmod(partial, 0o666 & ~_umask())  # mkstemp's 0600 would hide files from others
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def write_text(path: Path, text: str) -> None:
    with atomic_file(path) as out:
        out.write(text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: Path, data: Any) -> None:
    """Strict JSON (no NaN or Infinity tokens, which other tools refuse): see finite()."""
    write_text(path, json.dumps(finite(data), indent=1, allow_nan=False) + "\n")


def finite(data: Any) -> Any:
    """``data`` with every NaN or infinite float replaced by ``null``. A metric's samples keep
    their count and order this way; the metric says how many were not finite (metrics.py), and
    the item that produced them fails. One bad value never costs the run its files."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [finite(value) for value in data]
    return data
