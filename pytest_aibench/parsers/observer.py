"""Observer lines → metric records.

A benchmark program reports by printing one JSON object per line after a prefix, e.g.
``PyTorchObserver {"type": "NET", "metric": "latency", "unit": "us", "value": "8123"}``. The
prefix may sit anywhere in the line (logcat and glog add their own prefixes before it). Rows are:

- value rows (``type``, ``metric``, ``unit``, ``value``): one sample each;
- info rows (``info_string``): text, first one kept;
- summary rows (``num_runs`` + ``summary``): statistics the program computed itself;
- ``custom_output`` rows (optional ``table_name``): free-form tables kept as they are;
- FAI-PEP's old nested form ``{"NET": {"latency": {"value": ..., "unit": ...}}}``.

Pure: the caller hands in the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import RunnerError
from ..metrics import MetricRecord, sample

DEFAULT_PREFIXES: tuple[str, ...] = ("Caffe2Observer ", "PyTorchObserver ", "AIBENCH ")
_JSON_OBJECT = re.compile(r"\{.*\}")
# FAI-PEP's observer helper sends a summary as a list in this order.
_SUMMARY_ORDER = ("p0", "p10", "p50", "p90", "p100", "mean", "stdev", "MAD")


@dataclass
class ObserverOutput:
    records: dict[str, MetricRecord] = field(default_factory=dict)
    custom_output: dict[str, list[Any]] = field(default_factory=dict)
    skipped_lines: list[str] = field(default_factory=list)

    def samples(self, key: str) -> int:
        record = self.records.get(key)
        return len(record.values) if record else 0


def _payload(line: str, prefixes: Sequence[str]) -> str | None:
    """The JSON text after the first prefix found ("" if none follows); None without prefix."""
    for prefix in prefixes:
        position = line.find(prefix)
        if position >= 0:
            match = _JSON_OBJECT.search(line, position + len(prefix))
            return match.group(0) if match else ""
    return None


def _nested_rows(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """FAI-PEP's pre-2018 form: ``{"NET": {"latency": {"value": "1", "unit": "ms"}}}``."""
    rows = []
    for kind, metrics in row.items():
        if not isinstance(metrics, Mapping):
            continue
        for metric, body in metrics.items():
            if isinstance(body, Mapping) and ("value" in body or "info_string" in body):
                rows.append({"type": kind, "metric": metric, **body})
    return rows


def _summary(raw: Any) -> dict[str, float | None]:
    if isinstance(raw, list) and len(raw) == len(_SUMMARY_ORDER):
        raw = dict(zip(_SUMMARY_ORDER, raw, strict=True))
    if not isinstance(raw, Mapping):
        raise ValueError(f"summary must be an object, found {type(raw).__name__}")
    return {str(k): (None if v is None else float(v)) for k, v in raw.items()}


class _Collector:
    def __init__(self) -> None:
        self.output = ObserverOutput()

    def record_for(self, row: Mapping[str, Any]) -> MetricRecord:
        kind, metric, unit = str(row["type"]), str(row["metric"]), str(row.get("unit", ""))
        key = f"{kind} {metric}"
        record = self.output.records.get(key)
        if record is None:
            record = self.output.records[key] = MetricRecord(kind, metric, unit)
        elif record.unit != unit:
            raise RunnerError(
                f"metric {key!r} is reported in {record.unit!r} and in {unit!r}; a program must "
                "use one unit per metric"
            )
        return record

    def add(self, row: Mapping[str, Any], line: str) -> None:
        if "custom_output" in row:
            table = str(row.get("table_name") or "Custom Output")
            self.output.custom_output.setdefault(table, []).append(row["custom_output"])
            return
        if "type" not in row or "metric" not in row:
            nested = _nested_rows(row)
            if not nested:
                self.output.skipped_lines.append(line)
            for nested_row in nested:
                self.add(nested_row, line)
            return
        try:
            self._add_typed(row)
        except (TypeError, ValueError):
            self.output.skipped_lines.append(line)

    def _add_typed(self, row: Mapping[str, Any]) -> None:
        if "value" in row:
            value = sample(row["value"])  # before the record exists: a bad row adds nothing
            self.record_for(row).values.append(value)
        elif "summary" in row:
            summary = _summary(row["summary"])
            record = self.record_for(row)
            record.summary = summary
            record.num_runs = int(row.get("num_runs", 0)) or None
        elif "info_string" in row:
            record = self.record_for(row)
            if record.info_string is None:
                record.info_string = str(row["info_string"])
        else:
            raise ValueError("row has neither value, summary nor info_string")


def parse_observer_lines(
    lines: Iterable[str], prefixes: Sequence[str] = DEFAULT_PREFIXES
) -> ObserverOutput:
    """Every observer row in ``lines``; rows that are not valid JSON are listed as skipped."""
    collector = _Collector()
    for line in lines:
        payload = _payload(line, prefixes)
        if payload is None:
            continue
        try:
            row = json.loads(payload)
        except json.JSONDecodeError:
            collector.output.skipped_lines.append(line)
            continue
        if isinstance(row, Mapping):
            collector.add(row, line)
    return collector.output
