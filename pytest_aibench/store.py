"""Run files: the versioned JSON record of one pytest run's measurements.

Layout (version 1)::

    {"format": "pytest-aibench-run", "version": 1, "id": hex, "created": ISO-8601,
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
import math
import os
import platform
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, cast

from .names import path_component

RUN_FORMAT = "pytest-aibench-run"
RUN_VERSION = 1


def machine_info(cpu: str) -> dict[str, Any]:
    return {
        "node": socket.gethostname(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
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
    items: Iterable[Mapping[str, Any]],
    *,
    machine: Mapping[str, Any],
    commit: Mapping[str, Any] | None,
    plugin: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "id": uuid.uuid4().hex,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": dict(machine),
        "commit": dict(commit) if commit else None,
        "plugin": dict(plugin),
        "items": sorted((dict(item) for item in items), key=lambda item: str(item["nodeid"])),
    }


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


def save_name(name: str) -> str:
    """A save name as it appears in file names (``feature/x`` -> ``feature-x``); ``ValueError``
    for one that keeps no letter or digit."""
    return path_component(name, "save name")


def run_filename(run: Mapping[str, Any], name: str | None = None) -> str:
    """``20261128T140102Z_3f2a9c1b7e4d[_dirty]_<run id>[_NAME].json``: sorts in time, names the
    commit, and never names two runs alike (runs saved at once under one name stay apart)."""
    created = datetime.fromisoformat(str(run["created"])).strftime("%Y%m%dT%H%M%SZ")
    commit = run.get("commit") or {}
    stem = f"{created}_{str(commit.get('id', 'nocommit'))[:12]}"
    if commit.get("dirty"):
        stem += "_dirty"
    stem += f"_{str(run['id'])[:8]}"
    return f"{stem}_{save_name(name)}.json" if name else f"{stem}.json"


def save_run(storage: Path, run: Mapping[str, Any], name: str | None) -> Path:
    path = storage / run_filename(run, name)
    write_json(path, run)
    return path


def find_run(storage: Path, selector: str) -> Path:
    """The control run: ``latest``, a run file's path, or the latest run saved under NAME."""
    given = Path(selector).expanduser()
    if selector != "latest" and given.is_file():
        return given
    saved = sorted(storage.glob("*.json"), key=_created) if storage.is_dir() else []
    if selector != "latest":
        saved = [path for path in saved if path.name.endswith(f"_{save_name(selector)}.json")]
    if not saved:
        what = "no saved run" if selector == "latest" else f"no run saved as {selector!r}"
        raise ValueError(
            f"{what} in {storage} (and no file {selector!r}); save one first with "
            "--aibench-save NAME or --aibench-autosave"
        )
    return saved[-1]


def _created(path: Path) -> tuple[str, float]:
    """Saved runs in the order they were made: the time stamp that starts their name, then (for
    runs of the same second) their modification time."""
    return path.name[:16], path.stat().st_mtime


_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def _time_stats(values: list[float]) -> dict[str, Any]:
    """pytest-benchmark's stats keys for samples already in seconds."""
    import numpy as np

    data = np.asarray(values)
    q1, median, q3 = (float(q) for q in np.percentile(data, [25, 50, 75]))
    iqr = q3 - q1
    mean = float(data.mean())
    stddev = float(data.std(ddof=1)) if len(data) > 1 else 0.0
    low_fence, high_fence = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    inside = data[(data >= low_fence) & (data <= high_fence)]
    iqr_outliers = int(len(data) - len(inside))
    stddev_outliers = int(((data < mean - stddev) | (data > mean + stddev)).sum())
    return {
        "min": float(data.min()),
        "max": float(data.max()),
        "mean": mean,
        "stddev": stddev,
        "rounds": len(data),
        "median": median,
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_outliers,
        "stddev_outliers": stddev_outliers,
        "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": float(inside.min()) if len(inside) else float(data.min()),
        "hd15iqr": float(inside.max()) if len(inside) else float(data.max()),
        "ops": 1.0 / mean if mean else 0.0,
        "total": float(data.sum()),
        "iterations": 1,
        "data": [float(v) for v in data],
    }


def to_pytest_benchmark(run: Mapping[str, Any]) -> dict[str, Any]:
    """The run as pytest-benchmark's JSON: one benchmark per item and timed metric with raw
    samples (times in seconds). Summary-only and non-time metrics have no place there."""
    machine, commit = run["machine"], run.get("commit") or {}
    benchmarks = []
    for item in run["items"]:
        name = str(item["nodeid"]).rsplit("::", 1)[-1]
        for metric in item["metrics"]:
            scale = _SECONDS.get(metric["unit"])
            if scale is None or len(metric["values"]) < 2:
                continue
            key = f"{metric['type']} {metric['metric']}"
            benchmarks.append(
                {
                    "group": key,
                    "name": name,
                    "fullname": f"{item['nodeid']}::{key}",
                    "params": None,
                    "param": None,
                    "extra_info": {
                        "unit": metric["unit"],
                        "device": item.get("device"),
                        "case": item.get("case"),
                    },
                    "options": {
                        "disable_gc": False,
                        "timer": "perf_counter",
                        "min_rounds": 1,
                        "max_time": 0.0,
                        "min_time": 0.0,
                        "warmup": False,
                    },
                    "stats": _time_stats([v * scale for v in metric["values"]]),
                }
            )
    return {
        "machine_info": {
            "node": machine["node"],
            "processor": machine["cpu"],
            "machine": machine["machine"],
            "python_compiler": platform.python_compiler(),
            "python_implementation": machine["python_implementation"],
            "python_implementation_version": machine["python"],
            "python_version": machine["python"],
            "python_build": list(platform.python_build()),
            "release": machine["release"],
            "system": machine["system"],
            "cpu": {"brand_raw": machine["cpu"], "count": machine["cpu_count"]},
        },
        "commit_info": {
            "id": commit.get("id"),
            "time": commit.get("time"),
            "author_time": commit.get("time"),
            "dirty": commit.get("dirty", False),
            "project": None,
            "branch": commit.get("branch"),
        },
        "benchmarks": benchmarks,
        "datetime": run["created"],
        "version": "5.1.0",
    }


def to_github_benchmark(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """github-action-benchmark's ``customSmallerIsBetter`` entries: p50 of each lower-is-better
    metric (time, energy, errors), with p10..p90 as its range."""
    from .compare import LOWER, direction

    entries = []
    for item in run["items"]:
        for metric in item["metrics"]:
            summary = metric.get("summary") or {}
            value = summary.get("p50", summary.get("mean"))
            if value is None or direction(metric) != LOWER:
                continue
            entry = {
                "name": f"{item['nodeid']} {metric['type']} {metric['metric']}",
                "unit": metric["unit"],
                "value": value,
                "extra": f"n={metric['num_runs']}",
            }
            if summary.get("p10") is not None and summary.get("p90") is not None:
                entry["range"] = f"p10 {summary['p10']:.6g} .. p90 {summary['p90']:.6g}"
            entries.append(entry)
    return entries
