"""The lab at a glance, from the history store: every regression still standing (series by
series: item, device, metric, in commit order; ``verdicts.regressions`` decides), each with
the triage a person gave it, and the latest state of every model on every device. The
dashboard's front page and ``aibench regressions`` show the same ``Lab``.

An alert is named by its series and the first run after its change (that run's commit, else
the run), so its triage outlives new runs; a change point that moves to another commit is a
new alert.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from ..records import INCONCLUSIVE, REGRESSED
from ..verdicts.changes import ALPHA
from ..verdicts.regressions import FAILED, MIN_EFFECT, Regression, read_series, worst
from ..verdicts.statistics import GATED_METRICS
from . import history
from .schema import devices, items, runs, triage

NEW, ACKNOWLEDGED, FIXED, WONT_FIX = "new", "acknowledged", "fixed", "won't fix"
TRIAGE_STATES = (NEW, ACKNOWLEDGED, FIXED, WONT_FIX)
OPEN = (NEW, ACKNOWLEDGED)  # still someone's to do
FAILED_OUTCOMES = ("failed", "error")


@dataclass(frozen=True)
class Triage:
    state: str = NEW
    who: str = ""
    at: str = ""


@dataclass(frozen=True)
class Alert:
    id: str
    model: str
    nodeid: str
    device: str
    metric: str
    kind: str  # p50, or A/B ratio
    regression: Regression
    good: history.SeriesPoint | None  # the last run before the change: bisect from here
    bad: history.SeriesPoint  # the first run after it
    triage: Triage

    @property
    def change(self) -> float:
        return self.regression.ratio - 1

    @property
    def change_words(self) -> str:
        return f"{self.change * 100:+.1f}%"

    @property
    def interval_words(self) -> str | None:
        low, high = self.regression.low, self.regression.high
        if low is None or high is None:
            return None
        return f"{(low - 1) * 100:+.1f}% to {(high - 1) * 100:+.1f}%"

    @property
    def bisect_range(self) -> str:
        """``good..bad``, as ``aibench bisect --good --bad`` takes them ("-" without a run
        before the change)."""
        if self.good is None:
            return "-"
        return f"{_revision(self.good)}..{_revision(self.bad)}"


def _revision(point: history.SeriesPoint) -> str:
    return (point.commit or f"run {point.run}")[:12]


@dataclass
class Lab:
    alerts: list[Alert] = field(default_factory=list)
    states: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, device): state
    series: int = 0
    runs: int = 0

    @property
    def models(self) -> list[str]:
        return sorted({model for model, _ in self.states})

    @property
    def devices(self) -> list[str]:
        return sorted({device for _, device in self.states})

    def open_alerts(self) -> list[Alert]:
        return [alert for alert in self.alerts if alert.triage.state in OPEN]


def read_lab(
    db: Connection,
    filters: history.Filters,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> Lab:
    """Every gated metric's series (latency, energy, power, a generative model's figures),
    read for what it says now; newest alert first."""
    lab = Lab()
    found = history.described_series(db, filters)
    decided = _triage(db)
    cells: dict[tuple[str, str], list[str]] = {}
    for key, one in found.items():
        nodeid, device, metric, kind = key
        if metric.rpartition(" ")[2] not in GATED_METRICS:
            continue
        reading = read_series(one.points, one.higher_is_better, alpha, min_effect)
        cells.setdefault((one.model, device or "-"), []).append(reading.state)
        lab.series += 1
        lab.runs += len(one.points)
        for regression in reading.regressions:
            bad = one.points[regression.index]
            good = one.points[regression.index - 1] if regression.index else None
            alert_id = _alert_id(key, bad)
            lab.alerts.append(
                Alert(
                    alert_id,
                    one.model,
                    nodeid,
                    device or "-",
                    metric,
                    kind,
                    regression,
                    good,
                    bad,
                    decided.get(alert_id, Triage()),
                )
            )
    for cell in _failed_cells(db, filters):
        cells.setdefault(cell, []).append(FAILED)
    lab.states = {cell: worst(states) for cell, states in sorted(cells.items())}
    lab.alerts.sort(key=lambda alert: alert.bad.commit_time or alert.bad.created, reverse=True)
    return lab


def _alert_id(key: history.SeriesKey, bad: history.SeriesPoint) -> str:
    text = "\0".join([*key, bad.commit or bad.run])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _triage(db: Connection) -> dict[str, Triage]:
    rows = db.execute(select(triage.c.alert, triage.c.state, triage.c.who, triage.c.at))
    return {alert: Triage(state, who, at) for alert, state, who, at in rows}


def _failed_cells(db: Connection, filters: history.Filters) -> set[tuple[str, str]]:
    """Models and devices whose latest run of some item failed for another reason than its
    verdicts (a golden check, an assertion, a crash): a regressed item fails too, and is
    counted as regressed."""
    where = history.Filters(
        model=filters.model, item=filters.item, device=filters.device, branch=filters.branch
    ).where()
    query = (
        select(items.c.nodeid, items.c.model, devices.c.name, items.c.outcome, items.c.record)
        .select_from(
            items.join(runs, items.c.run == runs.c.id).outerjoin(
                devices, items.c.device == devices.c.id
            )
        )
        .where(where)
        .order_by(runs.c.created, runs.c.id)
    )
    latest: dict[tuple[str, str], tuple[str, bool]] = {}
    for nodeid, model, device, outcome, record in db.execute(query):
        failed = outcome in FAILED_OUTCOMES and not _failed_by_verdicts(json.loads(record))
        latest[(nodeid, device or "-")] = (model or nodeid, failed)
    return {(model, device) for (_, device), (model, failed) in latest.items() if failed}


def _failed_by_verdicts(record: Mapping[str, Any]) -> bool:
    verdicts = record.get("verdicts") or []
    return any(verdict.get("status") in (REGRESSED, INCONCLUSIVE) for verdict in verdicts)


def set_triage(db: Connection, alert: str, state: str, who: str) -> Triage:
    """Record a person's decision on a standing alert (``new`` takes a decision back)."""
    if state not in TRIAGE_STATES:
        raise ValueError(f"triage state {state!r}: expected one of {', '.join(TRIAGE_STATES)}")
    if not who.strip():
        raise ValueError("say who decides (a name or handle), for the team to see")
    if alert not in {standing.id for standing in read_lab(db, history.Filters()).alerts}:
        raise ValueError(
            f"no standing regression has the id {alert!r}: aibench regressions lists them"
        )
    decided = Triage(state, who.strip(), datetime.now(timezone.utc).isoformat(timespec="seconds"))
    db.execute(delete(triage).where(triage.c.alert == alert))
    if state != NEW:
        db.execute(insert(triage).values(alert=alert, **decided.__dict__))
    db.commit()  # in the caller's transaction, if it read the alerts first
    return decided
