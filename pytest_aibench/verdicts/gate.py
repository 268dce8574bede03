"""The gate: this run's items against a stored control run, matched by node id and device kind;
a workload that changed under the same node id, or another device or framework version, is
not judged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..metrics import by_key
from ..records import ComparisonState, ItemRecord, MetricDict, Payload, RunFile
from .rules import Rule
from .statistics import GATED_METRICS, MIN_CONTROL_RUNS, Verdict, judge, judge_across_runs
from .statistics import regressions as regressed_ones


def item_key(item: ItemRecord) -> tuple[str, str]:
    """How items of two runs are matched: node id and device kind."""
    return item["nodeid"], _device_kind(item)


def _device_kind(item: Payload) -> str:
    device = item.get("device")
    return device["kind"] if device else ""


def _versions(item: Payload) -> dict[str, str]:
    extra = item.get("extra") or {}
    return {
        name: str(details["version"])
        for name, details in extra.items()
        if isinstance(details, Mapping) and "version" in details
    }


WORKLOAD_FIELDS: tuple[Literal["inputs", "model_md5"], ...] = ("inputs", "model_md5")


def what_changed(control: Payload, treatment: Payload) -> list[str]:
    """Which of the workload's fields differ between two items that share a node id (adding a
    test shifts ``{ID}``: a 1x3x32x32 case must not be judged against a 4x3x64x64 one)."""
    case_c, case_t = control.get("case"), treatment.get("case")
    if not case_c or not case_t:
        return []
    return [
        name
        for name in WORKLOAD_FIELDS
        if name in case_c and name in case_t and case_c[name] != case_t[name]
    ]


def describe_changes(fields: Sequence[str]) -> str:
    """``["inputs", "model_md5"]`` -> ``input shapes and model files``."""
    words = {"inputs": "input shapes", "model_md5": "model files"}
    return " and ".join(words[name] for name in fields)


def _device_name(item: Payload) -> str | None:
    device = item.get("device")
    return device["name"] if device else None


def incompatibility(control: Payload, treatment: Payload) -> str | None:
    """Why comparing these two items would mislead (another device model, another framework
    version), or ``None``."""
    device_c, device_t = _device_name(control), _device_name(treatment)
    if device_c != device_t:
        return f"the control ran on {device_c!r}, this run on {device_t!r}"
    versions_c, versions_t = _versions(control), _versions(treatment)
    for name in sorted(set(versions_c) & set(versions_t)):
        if versions_c[name] != versions_t[name]:
            return f"the control used {name} {versions_c[name]}, this run {versions_t[name]}"
    return None


def rules_for(
    metrics: Sequence[MetricDict], explicit: Sequence[Rule], min_effect: float
) -> list[Rule]:
    """Every time and energy metric with the default rule (p50, ``min_effect``), and whatever
    the ``--aibench-fail-on`` rules name (they win for their metric)."""
    chosen = {
        f"{m['type']} {m['metric']}": Rule(f"{m['type']} {m['metric']}", "p50", min_effect)
        for m in metrics
        if m["metric"] in GATED_METRICS
    }
    chosen.update({rule.key: rule for rule in explicit})
    return list(chosen.values())


def compare_items(
    control: Sequence[MetricDict],
    treatment: Sequence[MetricDict],
    explicit: Sequence[Rule],
    min_effect: float,
    alpha: float,
) -> list[Verdict]:
    """A verdict for every gated metric both sides measured (their metric records)."""
    mine, theirs = by_key(treatment), by_key(control)
    return [
        judge(theirs[rule.key], mine[rule.key], rule, alpha)
        for rule in rules_for(treatment, explicit, min_effect)
        if rule.key in mine and rule.key in theirs
    ]


@dataclass(frozen=True)
class Judgement:
    state: ComparisonState
    verdicts: tuple[Verdict, ...] = ()
    failure: str | None = None  # the message a failing item shows
    note: str | None = None  # why it was not judged, or what differed although it was


def compare_across_runs(
    controls: Sequence[Sequence[MetricDict]],
    treatment: Sequence[MetricDict],
    explicit: Sequence[Rule],
    min_effect: float,
    alpha: float,
) -> list[Verdict]:
    """A verdict for every gated metric against several control runs' records of it."""
    mine, theirs = by_key(treatment), [by_key(metrics) for metrics in controls]
    return [
        judge_across_runs(
            [run[rule.key] for run in theirs if rule.key in run], mine[rule.key], rule, alpha
        )
        for rule in rules_for(treatment, explicit, min_effect)
        if rule.key in mine
    ]


@dataclass(frozen=True)
class ControlRun:
    """The saved run(s) to compare this run's items with, and the rules of the comparison:
    ``items`` holds the latest run's, ``earlier`` the same items of the runs before it
    (``--aibench-compare-runs``), whose spread is the drift between runs."""

    name: str
    items: Mapping[tuple[str, str], ItemRecord]
    earlier: Mapping[tuple[str, str], Sequence[ItemRecord]] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    min_effect: float = 0.05
    alpha: float = 0.01
    force: bool = False
    defer_failures: bool = False  # Benjamini-Hochberg: judged once all items are in

    @classmethod
    def of(cls, name: str, runs: Sequence[RunFile], **settings: Any) -> ControlRun:
        """From saved runs, oldest first; the last is the one compared item by item."""
        *before, latest = runs
        earlier: dict[tuple[str, str], list[ItemRecord]] = {}
        for run in before:
            for item in run["items"]:
                earlier.setdefault(item_key(item), []).append(item)
        items = {item_key(item): item for item in latest["items"]}
        return cls(name=name, items=items, earlier=earlier, **settings)

    def judge(self, nodeid: str, item: Payload) -> Judgement:
        """This run's item (its node id and record) against the control's of that node id and
        device kind."""
        control = self.items.get((nodeid, _device_kind(item)))
        if control is None:
            return Judgement("unmatched")
        return self.judge_pair(control, item)

    def judge_pair(self, control: ItemRecord, item: Payload) -> Judgement:
        """One item against its control item: the one rule that ``--aibench-compare`` and the
        dashboard's compare page both apply."""
        changed = what_changed(control, item)
        if changed and not self.force:
            # another workload under the same node id (adding a test shifts {ID}): not judged
            return Judgement("changed", note=f"its {describe_changes(changed)} changed")
        problem = incompatibility(control, item)
        if problem and not self.force:
            return Judgement(
                "refused",
                failure=(
                    f"aibench: not compared with {self.name}: {problem}. Compare runs of one "
                    "device model and framework version, or pass --aibench-compare-force"
                ),
                note=problem,
            )
        verdicts = tuple(self._verdicts(control, item))
        regressed = [v.explain() for v in regressed_ones(verdicts)]
        failure = None
        if regressed and not self.defer_failures:
            failure = f"aibench: regression against {self.name}:\n" + "\n".join(regressed)
        note = f"judged although its {describe_changes(changed)} changed" if changed else None
        return Judgement("compared", verdicts, failure, note)

    def _verdicts(self, control: ItemRecord, item: Payload) -> list[Verdict]:
        """Against every control run of the same workload when there are enough of them, else
        against the latest alone."""
        runs = [
            earlier
            for earlier in self.earlier.get(item_key(control), ())
            if not what_changed(earlier, item) and not incompatibility(earlier, item)
        ] + [control]
        if len(runs) >= MIN_CONTROL_RUNS:
            metrics = [run["metrics"] for run in runs]
            return compare_across_runs(
                metrics, item["metrics"], self.rules, self.min_effect, self.alpha
            )
        return compare_items(
            control["metrics"], item["metrics"], self.rules, self.min_effect, self.alpha
        )

    def unseen(self, keys: set[tuple[str, str]]) -> list[str]:
        """Node ids of control items this run did not have."""
        return sorted(nodeid for nodeid, kind in self.items if (nodeid, kind) not in keys)
