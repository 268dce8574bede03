"""The ``aibench`` fixture's object: times a callable and records any metric of one item."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from .metrics import (
    DEFAULT_STATISTICS,
    MetricRecord,
    OperatorRecord,
    net_first,
    operator_table,
    sample,
)
from .records import ComparisonState, Results, VerdictDict

T = TypeVar("T")


MIN_SAMPLE_NS = 20_000  # a sample lasts at least this long: the clock's cost is then under 1%


def calls_per_sample(fn: Callable[..., Any], args: Any, kwargs: Any) -> int:
    """How many calls make one sample of at least ``MIN_SAMPLE_NS`` (1 for anything slower):
    doubled from one call until a batch lasts long enough, as pytest-benchmark calibrates."""
    clock, calls = time.perf_counter_ns, 1
    while True:
        start = clock()
        for _ in range(calls):
            fn(*args, **kwargs)
        elapsed = clock() - start
        if elapsed >= MIN_SAMPLE_NS or calls >= 1 << 20:
            break
        calls *= 2
    if calls == 1:
        return 1
    return max(1, math.ceil(calls * MIN_SAMPLE_NS / max(elapsed, 1)))


class Recorder:
    """Collects the metric records of one pytest item.

    ``aibench(fn, *args, **kwargs)`` calls ``fn`` ``warmup`` times untimed, then ``iterations``
    times timed (one sample per call, in microseconds, as ``"NET latency"``) and returns the last
    result. ``aibench.record(...)`` adds samples of any other metric.
    """

    def __init__(self, iterations: int, warmup: int) -> None:
        if iterations < 1 or warmup < 0:
            raise ValueError(f"need iterations >= 1 and warmup >= 0, got {iterations}, {warmup}")
        self.iterations = iterations
        self.warmup = warmup
        self.records: dict[str, MetricRecord] = {}
        self.operators: dict[str, OperatorRecord] = {}
        # Whole-net time (us) of the runs the operators were measured in, one per profile, where
        # a profiler measured them apart from the timed runs; else shares are of NET latency.
        self.operator_bases: list[float] = []
        # Set where the item itself was judged (A/B mode): how, and the verdicts.
        self.comparison: ComparisonState | None = None
        self.verdicts: list[VerdictDict] = []
        # What fails the item once it has run (a golden mismatch, an A/B regression), each a
        # located message; items.ItemRecorder fails it, nothing else does.
        self.failures: list[str] = []
        self.extra: dict[str, Any] = {}
        self._called = False

    def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._called:
            raise RuntimeError(
                "aibench(...) was already called in this test; time a second function with "
                "aibench.measure('<name>', fn, ...), which records '<name> latency'"
            )
        self._called = True
        return self.measure("NET", fn, *args, **kwargs)

    def measure(self, type_: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Time ``fn`` like ``aibench(fn, ...)`` but record it as ``"<type_> latency"``.

        A call too short for one clock pair to time it (under ``MIN_SAMPLE_NS``) is timed in
        batches: each sample is the mean of ``calls`` back-to-back calls, as pytest-benchmark's
        rounds are, so the clock's own cost (about 0.06 us a pair here) does not become the
        figure; ``calls_per_sample`` in the item's ``extra`` says how many."""
        result: Any = None
        for _ in range(self.warmup):
            result = fn(*args, **kwargs)
        calls = calls_per_sample(fn, args, kwargs)
        samples = []
        clock = time.perf_counter_ns
        if calls == 1:
            for _ in range(self.iterations):
                start = clock()
                result = fn(*args, **kwargs)
                samples.append((clock() - start) / 1000.0)
        else:
            batch = range(calls)
            for _ in range(self.iterations):
                start = clock()
                for _ in batch:
                    result = fn(*args, **kwargs)
                samples.append((clock() - start) / 1000.0 / calls)
            self.extra.setdefault("calls_per_sample", {})[f"{type_} latency"] = calls
        self.record(type_, "latency", "us", samples)
        return result  # type: ignore[no-any-return]

    def record(
        self, type_: str, metric: str, unit: str, values: Iterable[float] | float
    ) -> MetricRecord:
        """Add samples of metric ``"<type_> <metric>"`` (one value or many)."""
        samples = [sample(v) for v in ([values] if isinstance(values, int | float) else values)]
        return self.add(MetricRecord(type_, metric, unit, samples))

    def add(self, record: MetricRecord) -> MetricRecord:
        """Merge a parsed record: samples are appended, a tool's summary or info is kept."""
        mine = self.records.get(record.key)
        if mine is None:
            self.records[record.key] = record
            return record
        if mine.unit != record.unit:
            raise ValueError(
                f"metric {record.key!r} was recorded in {mine.unit!r}, now in {record.unit!r}"
            )
        mine.values.extend(record.values)
        mine.summary = record.summary or mine.summary
        mine.num_runs = record.num_runs or mine.num_runs
        mine.info_string = mine.info_string or record.info_string
        return mine

    def add_operator(self, operator: OperatorRecord) -> OperatorRecord:
        """Add one operator's time; repeated names (re-runs of a program) merge their samples."""
        mine = self.operators.get(operator.name)
        if mine is None:
            self.operators[operator.name] = operator
            return operator
        mine.values.extend(operator.values)
        mine.mean = operator.mean if operator.mean is not None else mine.mean
        return mine

    def merge(self, other: Recorder) -> None:
        """Take another recorder's samples, operators and details (one A/B block's)."""
        for record in other.records.values():
            self.add(record)
        for operator in other.operators.values():
            self.add_operator(operator)
        # The operators of several profiles (an A/B side's worker epochs) are pooled, and so are
        # the whole-net times they are shares of: a share stays of its own side's profiled runs.
        self.operator_bases.extend(other.operator_bases)
        self.failures += [failure for failure in other.failures if failure not in self.failures]
        self.extra.update(other.extra)

    def operator_base(self) -> float | None:
        """Mean whole-net time (us) of the profiled runs the operators come from, if known."""
        return sum(self.operator_bases) / len(self.operator_bases) if self.operator_bases else None

    def net_average(self) -> float | None:
        """Mean whole-net latency in microseconds, the base of operator shares."""
        net = self.records.get("NET latency")
        if net is None or net.unit != "us":
            return None
        if net.values:
            return sum(net.values) / len(net.values)
        return (net.summary or {}).get("mean")

    def results(self, statistics: Sequence[str] = DEFAULT_STATISTICS) -> Results:
        """What the run file keeps of this item: metrics (net rows first), operators (most
        expensive first) and framework details."""
        results: Results = {
            "metrics": [self.records[key].to_dict(statistics) for key in net_first(self.records)],
            "operators": operator_table(
                self.operators.values(), self.operator_base() or self.net_average()
            ),
            "extra": dict(self.extra),
        }
        if self.comparison:
            results["comparison"] = self.comparison
            results["verdicts"] = list(self.verdicts)
        return results
