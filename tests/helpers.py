"""Small builders for spec files used by the end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_aibench.metrics import MetricRecord
from pytest_aibench.records import (
    CaseDict,
    ItemRecord,
    MetricDict,
    OperatorDict,
    RunFile,
    VerdictDict,
    VerdictStatus,
)
from pytest_aibench.runfile import RUN_FORMAT, RUN_VERSION

OBSERVER_PROGRAM = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
def arg(name, default=None):
    return args[args.index(name) + 1] if name in args else default
iterations = int(arg("--iter", "3"))
for i in range(iterations):
    print("PyTorchObserver " + json.dumps(
        {"type": "NET", "metric": "latency", "unit": "ms", "value": 10 + i}))
print("PyTorchObserver " + json.dumps(
    {"type": "conv1", "metric": "latency", "unit": "ms", "value": 4}))
if arg("--out"):
    open(arg("--out"), "w").write("written\\n")
sys.exit(int(os.environ.get("EXIT_CODE", "0")))
"""


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def write_program(path: Path, text: str = OBSERVER_PROGRAM) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


def generic_spec(
    name: str = "demo", tests: list[dict[str, Any]] | None = None, **model: Any
) -> dict[str, Any]:
    return {
        "model": {
            "name": name,
            "format": "generic",
            "files": {"program": {"filename": "prog.py", "location": "prog.py"}},
            **model,
        },
        "tests": tests
        or [
            {
                "identifier": "{ID}",
                "metric": "delay",
                "iter": 3,
                "commands": ["{files.program} --iter {iter}"],
            }
        ],
    }


def caffe2_spec(name: str, dims: list[str]) -> dict[str, Any]:
    """A Caffe2 spec in FAI-PEP's current form: one test per input size."""
    files = {
        part: {
            "filename": f"{part}_net.pb",
            "md5": "0" * 32,
            "location": f"https://example.invalid/{name}/{part}_net.pb",
        }
        for part in ("init", "predict")
    }
    tests = [
        {
            "identifier": "{ID}",
            "metric": "delay",
            "iter": 50,
            "warmup": 1,
            "commands": [
                "{program} --net {files.predict} --init_net {files.init} "
                f"--warmup {{warmup}} --iter {{iter}} --input_dims {d}"
            ],
        }
        for d in dims
    ]
    return {"model": {"name": name, "format": "caffe2", "files": files}, "tests": tests}


# -- typed records for the tests of verdicts, reporters and the history store ----------------


def metric_record(
    values: Iterable[float], metric: str = "latency", unit: str = "ms", kind: str = "NET"
) -> MetricDict:
    """A metric as the recorder writes it: its samples and their statistics."""
    return MetricRecord(kind, metric, unit, [float(v) for v in values]).to_dict()


def item_record(nodeid: str, *metrics: MetricDict, **fields: Any) -> ItemRecord:
    """A passed item of a run file; ``fields`` set or replace any other field."""
    record: ItemRecord = {
        "nodeid": nodeid,
        "outcome": "passed",
        "duration": 1.0,
        "case": None,
        "device": None,
        "device_state": {},
        "metrics": list(metrics),
        "operators": [],
        "extra": {},
    }
    record.update(fields)  # type: ignore[typeddict-item]  # any of its fields, by name
    return record


def case_dict(**fields: Any) -> CaseDict:
    """A spec case as a run file keeps it; ``fields`` set or replace any of its fields."""
    case: CaseDict = {
        "model": "mlp",
        "identifier": "x",
        "index": 0,
        "framework": "generic",
        "format": "generic",
        "metric": "delay",
        "spec": "mlp.json",
        "source": "mlp.json",
    }
    case.update(fields)  # type: ignore[typeddict-item]
    return case


def operator_dict(name: str, type_: str, mean: float, share: float) -> OperatorDict:
    return {
        "name": name,
        "type": type_,
        "unit": "us",
        "values": [mean],
        "mean": mean,
        "p50": mean,
        "calls": 1,
        "share": share,
    }


def verdict_dict(key: str, status: VerdictStatus, ratio: float, **fields: Any) -> VerdictDict:
    """A verdict as the gate writes it; ``fields`` set or replace any of its fields."""
    verdict: VerdictDict = {
        "key": key,
        "status": status,
        "method": "mann-whitney",
        "statistic": "p50",
        "unit": "ms",
        "control": 1.0,
        "treatment": ratio,
        "low": ratio,
        "high": ratio,
        "p_value": 0.001,
        "n_control": 20,
        "n_treatment": 20,
        "min_effect": 0.05,
        "ratio": ratio,
    }
    verdict.update(fields)  # type: ignore[typeddict-item]
    return verdict


def run_file(*items: ItemRecord, **fields: Any) -> RunFile:
    """A run file of ``items``; ``fields`` set or replace any other field."""
    run: RunFile = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "created": "2026-11-28T10:00:00+00:00",
        "machine": {},
        "commit": None,
        "plugin": {"version": "0"},
        "items": list(items),
    }
    run.update(fields)  # type: ignore[typeddict-item]
    return run


def written_run(folder: Path, name: str = "run.json") -> RunFile:
    """The run file a pytest run in ``folder`` wrote."""
    run: RunFile = json.loads((folder / name).read_text())
    return run


def metrics_of(item: ItemRecord) -> dict[str, MetricDict]:
    """An item's metrics by key ("NET latency")."""
    return {f"{m['type']} {m['metric']}": m for m in item["metrics"]}


def case_of(item: ItemRecord) -> CaseDict:
    """The spec case an item ran (every item of a spec has one)."""
    assert item["case"] is not None, f"{item['nodeid']} ran no spec case"
    return item["case"]


HOLD_BOARD = """\
import sys, time
from pathlib import Path
from pytest_aibench.devices.base import DeviceInfo
from pytest_aibench.devices.lease import lease_any
board = DeviceInfo("ssh", "board", "b", "ssh://b", "x", "y")
with lease_any([board], Path(sys.argv[1]), store=sys.argv[2] if sys.argv[2:] else None):
    print("held", flush=True)
    time.sleep(60)
"""


@contextmanager
def board_held_elsewhere(
    folder: Path, store: str | None = None, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the lease of the board ``ssh://b`` in ``folder`` (or in the
    shared ``store``); it is killed on leaving (or earlier, by the test)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_BOARD, str(folder), *([store] if store else [])],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
