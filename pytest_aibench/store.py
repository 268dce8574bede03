"""Run files: the versioned JSON record of one pytest run's measurements.

Layout (version 1)::

    {"format": "pytest-aibench-run", "version": 1, "created": ISO-8601,
     "machine": {...}, "commit": {...} | null, "plugin": {...},
     "items": [{"nodeid", "outcome", "duration", "case": {...} | null, "device": {...} | null,
                "metrics": [{"type", "metric", "unit", "values", "num_runs", "summary",
                             "summary_source", "info_string"}], "extra": {...}}]}

Files are written to a temporary name and renamed, so an interrupted run never leaves a
truncated file where an earlier run file was.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RUN_FORMAT = "pytest-aibench-run"
RUN_VERSION = 1


def machine_info(cpu: str) -> dict[str, Any]:
    return {
        "node": socket.gethostname(), "system": platform.system(), "release": platform.release(),
        "machine": platform.machine(), "cpu": cpu, "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def commit_info(root: Path) -> dict[str, Any] | None:
    """The checked-out commit of the git work tree at ``root``; ``None`` outside one."""
    commit = _git(root, "rev-parse", "HEAD")
    if not commit:
        return None
    return {
        "id": commit,
        "branch": _git(root, "rev-parse", "--abbrev-ref", "HEAD"),
        "time": _git(root, "show", "-s", "--format=%cI", "HEAD"),
        "dirty": bool(_git(root, "status", "--porcelain", "--untracked-files=no")),
    }


def build_run(
    items: Iterable[Mapping[str, Any]], *, machine: Mapping[str, Any],
    commit: Mapping[str, Any] | None, plugin: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": dict(machine),
        "commit": dict(commit) if commit else None,
        "plugin": dict(plugin),
        "items": sorted((dict(item) for item in items), key=lambda item: str(item["nodeid"])),
    }


def write_run(path: Path, run: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(run, out, indent=1, allow_nan=False)
            out.write("\n")
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def read_run(path: Path) -> dict[str, Any]:
    """A run file's data; ``ValueError`` if it is not a run file this version understands."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
        raise ValueError(f"{path} is not a pytest-aibench run file")
    if data.get("version") != RUN_VERSION:
        raise ValueError(
            f"{path} has run-file version {data.get('version')}, expected {RUN_VERSION}"
        )
    return data
