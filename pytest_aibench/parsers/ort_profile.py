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


def node_events(trace: Any) -> Iterable[Mapping[str, Any]]:
    events = trace.get("traceEvents", []) if isinstance(trace, Mapping) else trace
    for event in events:
        if (
            isinstance(event, Mapping)
            and event.get("cat") == "Node"
            and str(event.get("name", "")).endswith(_SUFFIX)
        ):
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
    events = trace.get("traceEvents", []) if isinstance(trace, Mapping) else trace
    runs = [
        float(event.get("dur", 0.0))
        for event in events
        if isinstance(event, Mapping)
        and event.get("cat") == "Session"
        and event.get("name") == "model_run"
    ]
    return sum(runs) / len(runs) if runs else None
