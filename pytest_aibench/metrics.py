"""Metric records and FAI-PEP's statistics over raw samples.

Pure: no pytest, no I/O. The statistics follow FAI-PEP's definitions exactly (population standard
deviation, unscaled MAD, percentiles by linear interpolation between closest ranks) so that a
number printed here means what it meant in a FAI-PEP report.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .records import MetricDict, OperatorDict, Results

DEFAULT_STATISTICS: tuple[str, ...] = (
    "mean",
    "p0",
    "p10",
    "p50",
    "p90",
    "p100",
    "stdev",
    "MAD",
    "cv",
)
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")

Summary = dict[str, "float | None"]


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile of already sorted values, interpolating linearly."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must lie in [0, 100], got {pct}")
    rank = (len(sorted_values) - 1) * pct / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return float(sorted_values[low])
    return sorted_values[low] * (high - rank) + sorted_values[high] * (rank - low)


def median(sorted_values: Sequence[float]) -> float:
    return percentile(sorted_values, 50)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _stdev(values: Sequence[float]) -> float:
    """Population standard deviation (divided by n, as FAI-PEP does)."""
    mean = _mean(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


def statistic(name: str, sorted_values: Sequence[float]) -> float | None:
    """One named statistic of sorted values; ``None`` where it is undefined (cv of mean 0)."""
    match = _PERCENTILE.match(name)
    if match:
        return percentile(sorted_values, float(match.group(1)))
    if name == "mean":
        return _mean(sorted_values)
    if name == "stdev":
        return _stdev(sorted_values)
    if name == "MAD":
        mid = median(sorted_values)
        return median(sorted(abs(v - mid) for v in sorted_values))
    if name == "cv":
        mean = _mean(sorted_values)
        return None if mean == 0 else _stdev(sorted_values) / mean
    raise ValueError(
        f"unknown statistic {name!r}: use mean, stdev, MAD, cv or pX with 0 <= X <= 100"
    )


def summarize(values: Iterable[float], names: Sequence[str] = DEFAULT_STATISTICS) -> Summary:
    """FAI-PEP's summary of raw samples; ``p50`` is always included."""
    ordered = sorted(float(v) for v in values)
    if not ordered:
        return {}
    wanted = list(names) + ([] if "p50" in names else ["p50"])
    return {name: statistic(name, ordered) for name in wanted}


def sample(value: Any) -> float:
    """One sample from a program's row or a test's ``record``: a number or a numeric string
    (FAI-PEP writes both), never a boolean, which Python would take for 1.0 or 0.0."""
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


@dataclass
class MetricRecord:
    """All samples of one metric key (``"<type> <metric>"``, e.g. ``"NET latency"``) of one item.

    ``values`` are raw samples. ``summary`` holds statistics the tool itself printed when it gives
    no samples (TFLite's benchmark_model); those are kept verbatim and never invented.
    """

    type: str
    metric: str
    unit: str
    values: list[float] = field(default_factory=list)
    summary: dict[str, float | None] | None = None
    num_runs: int | None = None
    info_string: str | None = None
    direction: Literal["lower", "higher"] | None = None  # where the name does not say
    definition: str | None = None  # what exactly was timed (generation.py's metrics)

    @property
    def key(self) -> str:
        return f"{self.type} {self.metric}"

    @property
    def finite_values(self) -> list[float]:
        return [value for value in self.values if math.isfinite(value)]

    def non_finite(self) -> dict[str, int]:
        """How many samples (or tool statistics) were NaN or infinite, by kind; empty if none."""
        found = Counter(str(value) for value in self.values if not math.isfinite(value))
        found.update(
            f"{name} {value}"
            for name, value in (self.summary or {}).items()
            if value is not None and not math.isfinite(value)
        )
        return dict(found)

    def statistics(self, names: Sequence[str] = DEFAULT_STATISTICS) -> Summary:
        """Statistics from the finite raw samples, else the tool's own summary, else nothing."""
        if self.values:
            return summarize(self.finite_values, names)
        return {
            name: value if value is None or math.isfinite(value) else None
            for name, value in (self.summary or {}).items()
        }

    def to_dict(self, names: Sequence[str] = DEFAULT_STATISTICS) -> MetricDict:
        """As the run file keeps it. JSON has no NaN or Infinity: ``values`` holds the finite
        samples only and ``non_finite`` counts the others by kind (``{"nan": 1}``), so a run
        file stays valid JSON for every reader; ``num_runs`` still counts them all."""
        record: MetricDict = {
            "type": self.type,
            "metric": self.metric,
            "unit": self.unit,
            "values": self.finite_values,
            "num_runs": self.num_runs if self.num_runs is not None else len(self.values),
            "summary": self.statistics(names),
            "summary_source": "samples" if self.values else ("tool" if self.summary else None),
            "info_string": self.info_string,
        }
        bad = self.non_finite()
        if bad:
            record["non_finite"] = bad
        if self.direction:
            record["direction"] = self.direction
        if self.definition:
            record["definition"] = self.definition
        return record

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricRecord:
        has_samples = bool(data.get("values"))
        return cls(
            type=str(data["type"]),
            metric=str(data["metric"]),
            unit=str(data.get("unit", "")),
            values=[float(v) for v in data.get("values", [])],
            summary=None if has_samples else data.get("summary"),
            num_runs=data.get("num_runs"),
            info_string=data.get("info_string"),
            direction=data.get("direction"),
            definition=data.get("definition"),
        )


@dataclass
class OperatorRecord:
    """Time spent in one operator of the net, in one schema for every framework.

    ``values`` are per-run times where the tool gives them (ONNX Runtime's profile, observer
    rows); ``mean`` is the tool's own average where that is all it gives (TFLite's op profiling
    table, torch.profiler's averages). ``calls`` is how often the operator ran per run.
    """

    name: str
    type: str
    unit: str = "us"
    values: list[float] = field(default_factory=list)
    mean: float | None = None
    calls: int | None = None

    @property
    def average(self) -> float | None:
        return _mean(self.values) if self.values else self.mean

    def to_dict(self, net_average: float | None) -> OperatorDict:
        """As the run file keeps it; ``share`` is this operator's part of the whole net."""
        average = self.average
        share = average / net_average if average is not None and net_average else None
        return {
            "name": self.name,
            "type": self.type,
            "unit": self.unit,
            "values": list(self.values),
            "mean": average,
            "p50": median(sorted(self.values)) if self.values else None,
            "calls": self.calls,
            "share": share,
        }


def operator_table(
    operators: Iterable[OperatorRecord], net_average: float | None
) -> list[OperatorDict]:
    """Operators as dicts, most expensive first. Without a whole-net time, shares are of the
    operators' total."""
    ordered = sorted(operators, key=lambda op: op.average or 0.0, reverse=True)
    total = net_average or math.fsum(op.average or 0.0 for op in ordered) or None
    return [op.to_dict(total) for op in ordered]


def by_key(records: Iterable[MetricDict]) -> dict[str, MetricDict]:
    """Metric records (as in a run file) by their ``"<type> <metric>"`` key."""
    return {f"{record['type']} {record['metric']}": record for record in records}


def net_first(keys: Iterable[str]) -> list[str]:
    """Metric keys ordered as FAI-PEP's screen reporter orders them: ``NET`` rows first."""
    return sorted(keys, key=lambda key: (not key.startswith("NET"), key))


def main_key(item: Results) -> str | None:
    """The key an item is plotted by: NET latency where measured, else its first metric with
    samples (whole-net rows first)."""
    metrics = by_key(item["metrics"])
    with_values = [key for key in net_first(metrics) if metrics[key].get("values")]
    if "NET latency" in with_values:
        return "NET latency"
    return with_values[0] if with_values else None
