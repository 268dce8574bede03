"""Spool folders hold what a run could not deliver (to the history store, to a remote
reporter) until a later run sends it. A file there that cannot be read back as what it should
be is never deleted and never stops the others: it is moved into ``set-aside/`` beside them,
and one line says which file and why."""

from __future__ import annotations

import os
from pathlib import Path

SET_ASIDE = "set-aside"


def set_aside(path: Path, why: str) -> str:
    """Move a spool file that cannot be sent out of the way; the line that says so."""
    folder = path.parent / SET_ASIDE
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    try:
        os.replace(path, target)
    except OSError as exc:
        return f"{path} cannot be sent ({why}) nor set aside ({exc})"
    return f"{path} cannot be sent ({why}): set aside as {target}"
