"""ONNX Runtime's profiling JSON → per-operator records. Pure.

The file is a Chrome-trace list of events (some tools wrap it as ``{"traceEvents": [...]}``).
Each operator run is a ``cat == "Node"`` event named ``<node name>_kernel_time`` whose ``args``
carry ``op_name``; ``dur`` is in microseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

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
    """One record per node; one sample per run (a node that ran twice in a run adds both).

    A control-flow node (``If``, ``Loop``, ``Scan``) runs its subgraph's nodes inside its own
    event, and those are listed too: each node's sample is its *own* time, its event less the
    events nested directly in it, so that no time is counted twice and shares add up to the
    whole run."""
    records: dict[str, OperatorRecord] = {}
    for event, own in _own_times(list(node_events(trace))):
        name = str(event["name"])[: -len(_SUFFIX)]
        record = records.get(name)
        if record is None:
            op_type = str(event.get("args", {}).get("op_name", ""))
            record = records[name] = OperatorRecord(name=name, type=op_type)
        record.values.append(own)
    for record in records.values():
        record.calls = max(1, round(len(record.values) / runs)) if runs else None
    return list(records.values())


def _own_times(events: list[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], float]]:
    """Each node event with its duration less that of the events nested directly inside it
    (on the same thread, within its start and end): one pass over the events in start order
    with a stack of the events still open."""
    # events without a start time (hand-made traces) cannot be placed: none is nested
    timed = [(_span(event), index) for index, event in enumerate(events) if "ts" in event]
    spans = sorted(timed)
    nested = [0.0] * len(events)
    open_spans: list[tuple[_Span, int]] = []
    for span, index in spans:
        while open_spans and not _inside(open_spans[-1][0], span):
            open_spans.pop()
        if open_spans:
            nested[open_spans[-1][1]] += span.end - span.start
        open_spans.append((span, index))
    return [
        (event, max(0.0, float(event.get("dur", 0.0)) - nested[index]))
        for index, event in enumerate(events)
    ]


class _Span(NamedTuple):
    thread: tuple[str, str]  # pid, tid
    start: float
    longest_first: float  # -duration: of two events that start together, the outer one first
    end: float


def _span(event: Mapping[str, Any]) -> _Span:
    start, duration = float(event.get("ts", 0.0)), float(event.get("dur", 0.0))
    thread = (str(event.get("pid")), str(event.get("tid")))
    return _Span(thread, start, -duration, start + duration)


def _inside(outer: _Span, inner: _Span) -> bool:
    return outer.thread == inner.thread and outer.start <= inner.start and inner.end <= outer.end


def mean_run_time(trace: Any) -> float | None:
    """Mean duration (us) of the profiled whole-net runs (``model_run`` events): the base of the
    operators' shares, since profiling slows the runs it measures."""
    runs = [float(event.get("dur", 0.0)) for event in _events(trace) if _is_run(event)]
    return sum(runs) / len(runs) if runs else None
