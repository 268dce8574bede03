"""FAI-PEP's reporter outputs, written from a finished run so that tools built on them (its
regression detector reads the local tree; lab workers upload simple-local files) keep working.

Each item becomes FAI-PEP's ``{"meta": ..., "data": ...}``: ``data`` maps ``"<type> <metric>"``
to the record (values at full precision, summary statistics), ``meta`` names the platform, the
framework, the net, the metric, the identifier and the commit.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..atomic import write_text
from ..names import path_component
from ..records import ItemRecord, RunFile


def filename(text: str, what: str = "name") -> str:
    """FAI-PEP's file name rule, made safe (never empty, ``.`` or ``..``): see names.py."""
    return path_component(text, what)


def _commit_time(run: RunFile) -> datetime:
    commit = run.get("commit")
    stamp = (commit["time"] if commit else None) or run["created"]
    return datetime.fromisoformat(stamp).astimezone(timezone.utc)


def records(run: RunFile) -> Iterator[dict[str, Any]]:
    """One ``{"meta", "data"}`` per item that recorded metrics."""
    commit: Mapping[str, Any] = run.get("commit") or {}
    for item in run["items"]:
        if not item.get("metrics"):
            continue
        case, device = _case(item), _device(item, run)
        meta = {
            "platform": device["name"],
            "platform_hash": device["hash"],
            "framework": case["framework"],
            "net_name": case["model"],
            "metric": case["metric"],
            "identifier": case["identifier"] or case["model"],
            "commit": commit.get("id") or "unknown",
            "commit_time": _commit_time(run).timestamp(),
            "time": datetime.fromisoformat(run["created"]).timestamp(),
            "nodeid": item["nodeid"],
        }
        data = {
            f"{m['type']} {m['metric']}": {
                key: m[key]
                for key in (
                    "type",
                    "metric",
                    "unit",
                    "values",
                    "summary",
                    "num_runs",
                    "info_string",
                )
                if key in m
            }
            for m in item["metrics"]
        }
        yield {"meta": meta, "data": data}


def _case(item: ItemRecord) -> Mapping[str, Any]:
    """A spec item's case; for a Python test using the ``aibench`` fixture, its node id."""
    return item.get("case") or {
        "framework": "pytest",
        "model": item["nodeid"].split("::")[-1],
        "metric": "delay",
        "identifier": item["nodeid"],
    }


def _device(item: ItemRecord, run: RunFile) -> Mapping[str, Any]:
    machine = run.get("machine") or {}
    return item.get("device") or {
        "name": machine.get("cpu") or machine.get("node", "host"),
        "hash": machine.get("node", "host"),
    }


def _first_unused(folder: Path) -> Path:
    index = 0
    while (folder / str(index)).exists():
        index += 1
    return folder / str(index)


def write_local_tree(root: Path, run: RunFile) -> list[Path]:
    """``<platform>/<framework>/<net>/<metric>/<identifier>/<Y>/<M>/<D>/<commit>/<N>/``, with
    ``<key>.txt`` per record and ``meta.txt`` (indented, key-sorted JSON); N is the first unused
    number, so earlier runs stay."""
    written = []
    when = _commit_time(run)
    for entry in records(run):
        meta = entry["meta"]
        folder = root.joinpath(
            *(
                filename(str(meta[key]), key)
                for key in ("platform", "framework", "net_name", "metric", "identifier")
            ),
            str(when.year),
            str(when.month),
            str(when.day),
            filename(meta["commit"], "commit"),
        )
        folder = _first_unused(folder)
        folder.mkdir(parents=True)
        for key, record in entry["data"].items():
            (folder / f"{filename(key)}.txt").write_text(
                json.dumps(record, indent=2, sort_keys=True), encoding="utf-8"
            )
        (folder / "meta.txt").write_text(
            json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8"
        )
        written.append(folder)
    return written


def write_simple_local(root: Path, run: RunFile) -> list[Path]:
    """``<identifier>/data.txt``: the item's data as compact JSON (an earlier run's data.txt is
    replaced, atomically; nothing else in the folder is touched). An identifier measured on
    several devices gets ``-<device hash>``, and one that several models share ``-<model>``
    after that, so that no item of the run overwrites another's file."""
    written = []
    entries = list(records(run))
    for entry, name in zip(entries, _unique_names(entries), strict=True):
        path = root / name / "data.txt"
        write_text(path, json.dumps(entry["data"], separators=(",", ":")))
        written.append(path)
    return written


def _unique_names(entries: list[dict[str, Any]]) -> list[str]:
    names = [filename(entry["meta"]["identifier"], "identifier") for entry in entries]
    for suffix in ("platform_hash", "net_name"):
        seen = Counter(names)
        names = [
            filename(f"{name}-{entry['meta'][suffix]}", "identifier") if seen[name] > 1 else name
            for name, entry in zip(names, entries, strict=True)
        ]
    seen = Counter(names)  # still alike (one model, test and device twice): number them
    return [f"{name}-{index}" if seen[name] > 1 else name for index, name in enumerate(names)]


def simple_screen_lines(run: RunFile) -> list[str]:
    """The raw records, one line per item, as FAI-PEP's simple screen reporter prints them."""
    return [json.dumps(entry["data"], sort_keys=True) for entry in records(run)]
