"""ONNX Runtime's profiling JSON → per-operator records. Pure.

The file is a Chrome-trace list of events (some tools wrap it as ``{"traceEvents": [...]}``).
Each operator run is a ``cat == "Node"`` event named ``<node name>_kernel_time`` whose ``args``
carry ``op_name``; ``dur`` is in microseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..metrics import OperatorRecord

_SUFFIX = "_kernel_time"


def _events(trace: Any) -> list[Mapping[str, Any]]:
    events = trace.get("traceEvents", []) if isinstance(trace, Mapping) else trace
    return [event for event in events if isinstance(event, Mapping)]


def _is_run(event: Mapping[str, Any]) -> bool:
    return event.get("cat") == "Session" and event.get("name") == "model_run"


def after_warmup(trace: Any, warmup: int) -> list[Mapping[str, Any]]:
    """The events after the first ``warmup`` whole-net runs of the trace ended (``ts`` and
    ``dur`` in us): a session's first run is cold, many times a warm one for some nodes (one
    shufflenet node took 8,253 us cold against 136 us warm), and would skew every mean."""
    events = _events(trace)
    runs = sorted((e for e in events if _is_run(e)), key=lambda e: float(e.get("ts", 0.0)))
    if warmup <= 0 or len(runs) <= warmup:
        return events
    last = runs[warmup - 1]
    cutoff = float(last.get("ts", 0.0)) + float(last.get("dur", 0.0))
    return [event for event in events if float(event.get("ts", 0.0)) >= cutoff]


def node_events(trace: Any) -> Iterable[Mapping[str, Any]]:
    for event in _events(trace):
        if event.get("cat") == "Node" and str(event.get("name", "")).endswith(_SUFFIX):
            yield event


def operators_from_profile(trace: Any, runs: int) -> list[OperatorRecord]:
    """One record per node; one sample per run (a node that ran twice in a run adds both)."""
    records: dict[str, OperatorRecord] = {}
    for event in node_events(trace):
        name = str(event["name"])[: -len(_SUFFIX)]
        record = records.get(name)
        if record is None:
            op_type = str(event.get("args", {}).get("op_name", ""))
            record = records[name] = OperatorRecord(name=name, type=op_type)
        record.values.append(float(event.get("dur", 0.0)))
    for record in records.values():
        record.calls = max(1, round(len(record.values) / runs)) if runs else None
    return list(records.values())


def mean_run_time(trace: Any) -> float | None:
    """Mean duration (us) of the profiled whole-net runs (``model_run`` events): the base of the
    operators' shares, since profiling slows the runs it measures."""
    runs = [float(event.get("dur", 0.0)) for event in _events(trace) if _is_run(event)]
    return sum(runs) / len(runs) if runs else None
