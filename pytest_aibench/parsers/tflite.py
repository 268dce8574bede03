"""TFLite's ``benchmark_model`` text output → metric and operator records. Pure.

The tool prints no per-run samples, only summaries, and both of its output generations are
read:

- per phase, ``count=N first=F curr=C min=A max=B avg=M std=S`` (newer builds append
  ``p5= median= p95=``; when every run took the same time, ``count=N curr=C``); the last such
  line is the measured phase (the warmup phase prints one first);
- the closing line, ``Inference timings in us: Init: I, First inference: F, Warmup (avg): W,
  Inference (avg): A`` or, in older builds, ``Average inference timings in us: Warmup: W,
  Init: I, Inference: A`` (``no stats:`` in place of ``Inference:`` in some);
- memory: ``Memory footprint delta from the start of the tool (MB): init=I overall=O`` (older
  builds: ``Peak memory footprint (MB): init=I overall=O``), the increment over the tool's own
  start, and ``Overall peak memory footprint (MB) via periodic monitoring: P``, the peak; the
  tool's MB are 2^20 bytes;
- with ``--enable_op_profiling``, tables headed ``===... Run Order ...===`` (per node, in run
  order), ``Top by Computation Time`` and ``Summary by node type``.

The summary keeps exactly what the tool gives: p50 is ``None`` (unknown) unless the tool printed
a median. Lines may carry ``INFO: `` or logcat prefixes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..metrics import MetricRecord, OperatorRecord

_NUMBER = r"(-?[\d.]+(?:[eE][-+]?\d+)?)"
_STATS = re.compile(
    rf"count=(\d+) first={_NUMBER} curr={_NUMBER} min={_NUMBER} max={_NUMBER} avg={_NUMBER} "
    rf"std={_NUMBER}(?: p5={_NUMBER} median={_NUMBER} p95={_NUMBER})?"
)
_ALL_SAME = re.compile(rf"count=(\d+) curr={_NUMBER}")
_TIMINGS = re.compile(r"(?:Average )?[Ii]nference timings in us: (.*)$")
_INCREMENT = re.compile(
    rf"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): "
    rf"init={_NUMBER} overall={_NUMBER}"
)
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: {_NUMBER}")
_SECTION = re.compile(r"={5,} (.+?) ={5,}")
_NODE_NAME = re.compile(r"^\[(.*)\](?::\d+)?$")  # newer builds append the node index: [name]:3
# Older builds name the measured average "Inference" or "no stats"; newer "Inference (avg)".
# "Init" is the model's load, named as the in-process runners name it.
_TIMING_NAMES = {
    "inference": "inference_avg",
    "no_stats": "inference_avg",
    "warmup": "warmup_avg",
    "init": "load",
}


@dataclass
class BenchmarkModelOutput:
    records: dict[str, MetricRecord] = field(default_factory=dict)
    operators: list[OperatorRecord] = field(default_factory=list)
    operator_types: list[dict[str, float | int | str]] = field(default_factory=list)


def _stats_record(line: str) -> MetricRecord | None:
    if "Timings (microseconds)" in line:  # the op profiler's own total, not a benchmark phase
        return None
    match = _STATS.search(line)
    if match:
        count, _first, _curr, low, high, mean, std, p5, median, p95 = match.groups()
        summary: dict[str, float | None] = {
            "mean": float(mean),
            "p0": float(low),
            "p100": float(high),
            "stdev": float(std),
            "p50": float(median) if median else None,
        }
        if p5:
            summary.update(p5=float(p5), p95=float(p95))
        return MetricRecord("NET", "latency", "us", summary=summary, num_runs=int(count))
    same = _ALL_SAME.search(line)
    if same:
        value = float(same.group(2))
        summary = {"mean": value, "p0": value, "p100": value, "stdev": 0.0, "p50": value}
        return MetricRecord("NET", "latency", "us", summary=summary, num_runs=int(same.group(1)))
    return None


def _timings(text: str) -> dict[str, float]:
    """``Init: 3210, First inference: 512, ...`` → ``{"init": 3210.0, ...}``."""
    found = {}
    for part in text.split(","):
        label, _, value = part.rpartition(":")
        key = re.sub(r"\W+", "_", label.strip().lower()).strip("_")
        key = _TIMING_NAMES.get(key, key)
        try:
            found[key] = float(value)
        except ValueError:
            continue
    return found


def _memory_record(line: str) -> MetricRecord | None:
    """``NET memory_increment`` (the whole run's, over the tool's start) or ``NET
    peak_memory``, in MiB."""
    if found := _INCREMENT.search(line):
        return MetricRecord("NET", "memory_increment", "MiB", values=[float(found.group(2))])
    if found := _PEAK.search(line):
        return MetricRecord("NET", "peak_memory", "MiB", values=[float(found.group(1))])
    return None


def _row(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("\t") if cell.strip()]


def _node_row(cells: list[str]) -> OperatorRecord | None:
    """``type [start] first avg_ms N% cdf% mem times [name]``, with or without ``start``."""
    name = _NODE_NAME.match(cells[-1]) if len(cells) >= 7 else None
    if name is None:
        return None
    share_at = next((i for i, cell in enumerate(cells) if cell.endswith("%")), None)
    if share_at is None or share_at < 2:
        return None
    try:
        average_ms, calls = float(cells[share_at - 1]), int(float(cells[-2]))
    except ValueError:
        return None
    return OperatorRecord(name=name.group(1), type=cells[0], mean=average_ms * 1000, calls=calls)


def _type_row(cells: list[str]) -> dict[str, float | int | str] | None:
    """``type count avg_ms avg% cdf% mem times``."""
    if len(cells) < 5 or not cells[3].endswith("%"):
        return None
    try:
        return {
            "type": cells[0],
            "count": int(cells[1]),
            "mean_us": float(cells[2]) * 1000,
            "share": float(cells[3].rstrip("%")) / 100,
        }
    except ValueError:
        return None


def parse_benchmark_model(lines: Iterable[str]) -> BenchmarkModelOutput:
    output = BenchmarkModelOutput()
    net: MetricRecord | None = None
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in lines:
        net = _stats_record(line) or net
        timings = _TIMINGS.search(line)
        if timings:
            for key, value in _timings(timings.group(1)).items():
                output.records[f"NET {key}"] = MetricRecord("NET", key, "us", values=[value])
            continue
        if memory := _memory_record(line):
            output.records[memory.key] = memory
            continue
        section = _SECTION.search(line)
        if section:  # a later section of the same title (regular runs after init) wins
            current = sections[section.group(1).strip()] = []
            continue
        if current is not None and "\t" in line:
            current.append(_row(line))
    average = output.records.pop("NET inference_avg", None)
    if net is None and average is not None:  # a build that printed only the closing line
        mean = average.values[0]
        net = MetricRecord("NET", "latency", "us", summary={"mean": mean, "p50": None})
    if net is not None:
        output.records["NET latency"] = net
    nodes = sections.get("Run Order") or sections.get("Top by Computation Time") or []
    output.operators = [op for op in map(_node_row, nodes) if op is not None]
    output.operator_types = [
        row for row in map(_type_row, sections.get("Summary by node type", [])) if row is not None
    ]
    return output
