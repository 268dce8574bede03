"""The gate: this run's items against a stored control run, matched by node id and device kind;
a workload that changed under the same node id, or another device or framework version, is
not judged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..metrics import by_key
from .statistics import GATED_METRICS, Rule, Verdict, judge
from .statistics import regressed as regressed_ones


def item_key(item: Mapping[str, Any]) -> tuple[str, str]:
    """How items of two runs are matched: node id and device kind."""
    return str(item["nodeid"]), str((item.get("device") or {}).get("kind", ""))


def _versions(item: Mapping[str, Any]) -> dict[str, str]:
    extra = item.get("extra") or {}
    return {
        name: str(details["version"])
        for name, details in extra.items()
        if isinstance(details, Mapping) and "version" in details
    }


WORKLOAD_FIELDS = ("inputs", "model_md5")


def what_changed(control: Mapping[str, Any], treatment: Mapping[str, Any]) -> list[str]:
    """Which of the workload's fields differ between two items that share a node id (adding a
    test shifts ``{ID}``: a 1x3x32x32 case must not be judged against a 4x3x64x64 one)."""
    case_c, case_t = control.get("case") or {}, treatment.get("case") or {}
    return [
        name
        for name in WORKLOAD_FIELDS
        if name in case_c and name in case_t and case_c[name] != case_t[name]
    ]


def incompatibility(control: Mapping[str, Any], treatment: Mapping[str, Any]) -> str | None:
    """Why comparing these two items would mislead (another device model, another framework
    version), or ``None``."""
    device_c = (control.get("device") or {}).get("name")
    device_t = (treatment.get("device") or {}).get("name")
    if device_c != device_t:
        return f"the control ran on {device_c!r}, this run on {device_t!r}"
    versions_c, versions_t = _versions(control), _versions(treatment)
    for name in sorted(set(versions_c) & set(versions_t)):
        if versions_c[name] != versions_t[name]:
            return f"the control used {name} {versions_c[name]}, this run {versions_t[name]}"
    return None


def rules_for(
    metrics: Sequence[Mapping[str, Any]], explicit: Sequence[Rule], min_effect: float
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
    control: Mapping[str, Any],
    treatment: Mapping[str, Any],
    explicit: Sequence[Rule],
    min_effect: float,
    alpha: float,
) -> list[Verdict]:
    """A verdict for every gated metric the two items share."""
    mine, theirs = by_key(treatment["metrics"]), by_key(control["metrics"])
    return [
        judge(theirs[rule.key], mine[rule.key], rule, alpha)
        for rule in rules_for(treatment["metrics"], explicit, min_effect)
        if rule.key in mine and rule.key in theirs
    ]


@dataclass(frozen=True)
class Judgement:
    state: str  # compared | unmatched | changed | refused
    verdicts: tuple[Verdict, ...] = ()
    failure: str | None = None  # the message a failing item shows


@dataclass(frozen=True)
class ControlRun:
    """A saved run to compare this run's items with, and the rules of the comparison."""

    name: str
    items: Mapping[tuple[str, str], Mapping[str, Any]]
    rules: tuple[Rule, ...] = ()
    min_effect: float = 0.05
    alpha: float = 0.01
    force: bool = False
    defer_failures: bool = False  # Benjamini-Hochberg: judged once all items are in

    @classmethod
    def of(cls, name: str, run: Mapping[str, Any], **settings: Any) -> ControlRun:
        return cls(name=name, items={item_key(item): item for item in run["items"]}, **settings)

    def judge(self, item: Mapping[str, Any]) -> Judgement:
        control = self.items.get(item_key(item))
        if control is None:
            return Judgement("unmatched")
        if what_changed(control, item) and not self.force:
            return Judgement("changed")  # another workload under the same node id: not judged
        problem = incompatibility(control, item)
        if problem and not self.force:
            return Judgement(
                "refused",
                failure=(
                    f"aibench: not compared with {self.name}: {problem}. Compare runs of one "
                    "device model and framework version, or pass --aibench-compare-force"
                ),
            )
        verdicts = tuple(compare_items(control, item, self.rules, self.min_effect, self.alpha))
        regressed = [v.explain() for v in regressed_ones(verdicts)]
        failure = None
        if regressed and not self.defer_failures:
            failure = f"aibench: regression against {self.name}:\n" + "\n".join(regressed)
        return Judgement("compared", verdicts, failure)

    def unseen(self, keys: set[tuple[str, str]]) -> list[str]:
        """Node ids of control items this run did not have."""
        return sorted(nodeid for nodeid, kind in self.items if (nodeid, kind) not in keys)
