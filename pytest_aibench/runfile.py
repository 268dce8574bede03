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

import functools
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from .atomic import write_json
from .names import path_component
from .records import BuildInfo, CommitDict, ItemRecord, RunFile

RUN_FORMAT = "pytest-aibench-run"
RUN_VERSION = 1


def build_run(
    items: Iterable[ItemRecord],
    *,
    machine: Mapping[str, Any],
    commit: CommitDict | None,
    plugin: dict[str, str],
    build: BuildInfo | None = None,
) -> RunFile:
    run: RunFile = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "id": uuid.uuid4().hex,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": dict(machine),
        "commit": commit,
        "plugin": dict(plugin),
        "items": sorted(items, key=lambda item: item["nodeid"]),
    }
    if build is not None:
        run["build"] = BuildInfo(
            repo=build["repo"], id=build["id"], time=build["time"], subject=build["subject"]
        )
    return run


def read_run(path: Path) -> RunFile:
    """A run file's data; ``ValueError`` if it is not a run file this version understands."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # not JSON, or not UTF-8
        raise ValueError(f"{path} is not a JSON file: {exc}") from None
    return check_run(data, str(path))


def check_run(data: Any, where: str) -> RunFile:
    """``data`` as a run file, or ``ValueError`` naming the fields that are wrong: every door
    a run file comes in by (a control run, an upload, ``history import``, the spool) checks it
    against the typed records of records.py, strictly (a boolean is no number, text no
    record), so that nothing downstream meets a field of another type than it was written."""
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
        raise ValueError(f"{where} is not a pytest-aibench run file")
    if data.get("version") != RUN_VERSION:
        raise ValueError(
            f"{where} has run-file version {data.get('version')}, expected {RUN_VERSION}"
        )
    from pydantic import ValidationError

    try:
        _run_schema().validate_python(data, strict=True)
    except ValidationError as exc:
        raise ValueError(f"{where}: {_fields(exc)}") from None
    return cast("RunFile", data)


@functools.cache
def _run_schema() -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(RunFile)


SHOWN_PROBLEMS = 3


def _json_path(location: tuple[int | str, ...]) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location)
    return path.lstrip(".") or "the file"


def _fields(error: Any) -> str:
    """The first problems pydantic found, each as ``items[0].build: expected ...``."""
    problems = [
        f"{_json_path(problem['loc'])}: {problem['msg'][0].lower()}{problem['msg'][1:]}"
        for problem in error.errors(include_url=False)
    ]
    more = len(problems) - SHOWN_PROBLEMS
    return "; ".join(problems[:SHOWN_PROBLEMS]) + (f" (and {more} more)" if more > 0 else "")


def save_name(name: str) -> str:
    """A save name as it appears in file names (``feature/x`` -> ``feature-x``); ``ValueError``
    for one that keeps no letter or digit."""
    return path_component(name, "save name")


def run_filename(run: RunFile, name: str | None = None) -> str:
    """``20261128T140102Z_3f2a9c1b7e4d[_dirty]_<run id>[_NAME].json``: sorts in time, names the
    commit, and never names two runs alike (runs saved at once under one name stay apart)."""
    created = datetime.fromisoformat(str(run["created"])).strftime("%Y%m%dT%H%M%SZ")
    commit = run.get("commit")
    stem = f"{created}_{commit['id'][:12] if commit else 'nocommit'}"
    if commit and commit["dirty"]:
        stem += "_dirty"
    stem += f"_{run.get('id', '')[:8]}"
    return f"{stem}_{save_name(name)}.json" if name else f"{stem}.json"


def save_run(storage: Path, run: RunFile, name: str | None) -> Path:
    path = storage / run_filename(run, name)
    write_json(path, run)
    return path


def find_runs(storage: Path, selector: str, count: int = 1) -> list[Path]:
    """The control runs, oldest first: a run file's path, or the latest ``count`` runs saved
    (under NAME, or under any name for ``latest``)."""
    given = Path(selector).expanduser()
    if selector != "latest" and given.is_file():
        return [given]
    saved = sorted(storage.glob("*.json"), key=_created) if storage.is_dir() else []
    if selector != "latest":
        saved = [path for path in saved if path.name.endswith(f"_{save_name(selector)}.json")]
    if not saved:
        what = "no saved run" if selector == "latest" else f"no run saved as {selector!r}"
        raise ValueError(
            f"{what} in {storage} (and no file {selector!r}); save one first with "
            "--aibench-save NAME or --aibench-autosave"
        )
    return saved[-count:]


def _created(path: Path) -> tuple[str, float]:
    """Saved runs in the order they were made: the time stamp that starts their name, then (for
    runs of the same second) their modification time."""
    return path.name[:16], path.stat().st_mtime
