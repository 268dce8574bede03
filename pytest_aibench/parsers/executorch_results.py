"""ExecuTorch's benchmark apps' results (``benchmark_results.json``) -> metric records. Pure.

The Android and iOS benchmark apps write one JSON list; each entry names the model
(``benchmarkModel``: ``name``, ``backend``, ``quantization``), a metric with its unit in
parentheses (``avg_inference_latency(ms)``, ``trimmean_inference_latency(ms)``,
``model_load_time(ms)``, ``ram_pss_usage(mb)``; ``load_status`` and the generative metrics
without one), its value (``actualValue``), a target (``targetValue``, 0 for none) and the
device (``deviceInfo``). The apps keep one value per metric, no samples: the records are
summary-only (the value as the mean, as the app computed it), never made into samples.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import RunnerError
from ..metrics import MetricRecord

RESULTS_FILE = "benchmark_results.json"
_NAME_AND_UNIT = re.compile(r"^(?P<name>[^()]+?)\s*(?:\((?P<unit>[^()]*)\))?$")


@dataclass
class BenchmarkResults:
    records: list[MetricRecord]
    models: list[dict[str, Any]] = field(default_factory=list)  # benchmarkModel, each once
    device: dict[str, Any] | None = None


def parse_benchmark_results(text: str, where: str) -> BenchmarkResults:
    """The file's metrics as records keyed ``"<model> <metric>"``: a file may hold several
    models (the app runs each ``.pte`` it finds) or one model under several backends."""
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunnerError(f"{where}: {RESULTS_FILE} is not JSON: {exc}") from None
    if not isinstance(entries, list):
        raise RunnerError(f"{where}: {RESULTS_FILE} holds {type(entries).__name__}, not a list")
    results = BenchmarkResults([])
    for index, entry in enumerate(entries):
        record, model = _entry(entry, f"{where} [{index}]")
        results.records.append(record)
        if model not in results.models:
            results.models.append(model)
        if results.device is None and isinstance(entry.get("deviceInfo"), dict):
            results.device = dict(entry["deviceInfo"])
    return results


def _entry(entry: Any, where: str) -> tuple[MetricRecord, dict[str, Any]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("metric"), str):
        raise RunnerError(f"{where}: an entry without a 'metric' name: {str(entry)[:200]}")
    value = entry.get("actualValue")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RunnerError(f"{where}: {entry['metric']!r} has no numeric 'actualValue'")
    given = entry.get("benchmarkModel")
    model: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
    found = _NAME_AND_UNIT.match(entry["metric"].strip())
    name, unit = (found["name"], found["unit"] or "") if found else (entry["metric"], "")
    label = "_".join(str(model[k]) for k in ("name", "backend", "quantization") if model.get(k))
    record = MetricRecord(
        label or "NET",
        name,
        unit,
        summary={"mean": float(value)},
        info_string=f"target {entry['targetValue']}" if entry.get("targetValue") else None,
    )
    return record, model
