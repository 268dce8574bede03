"""What each dashboard page shows, as plain data read from the store: the templates lay it out
and the charts (plotly traces and layouts, as dicts) are drawn in the browser."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection

from ..metrics import by_key, main_key
from ..records import ItemRecord, MetricDict, RunFile
from ..reporting.terminal import energy_rows, format_number
from ..store import history
from ..store.regressions import TRIAGE_STATES, Alert, read_lab
from ..verdicts.changes import Step
from ..verdicts.gate import ControlRun, Judgement
from ..verdicts.regressions import series_changes
from ..verdicts.statistics import detection_words

FILTER_FIELDS = ("model", "device", "framework", "branch", "commit", "since", "until")
LAB_FILTERS = ("model", "device", "branch")  # a regression is read over a series' whole history
CONTROL, TREATMENT = "#6b7280", "#2563eb"


def filters_from(query: Mapping[str, str]) -> history.Filters:
    """The page's filters from its query string (globs, as the ``aibench history`` ones)."""
    return history.Filters(**{name: query.get(name) or None for name in FILTER_FIELDS})


# -- the lab at a glance: regressions standing, and every model on every device ---------------


def lab_view(db: Connection, query: Mapping[str, str]) -> dict[str, Any]:
    lab = read_lab(db, history.Filters(**{name: query.get(name) or None for name in LAB_FILTERS}))
    return {
        "lab": lab,
        "alerts": [_alert_view(alert) for alert in lab.alerts],
        "fields": LAB_FILTERS,
        "triage_states": TRIAGE_STATES,
    }


def lab_json(db: Connection, query: Mapping[str, str]) -> dict[str, Any]:
    """The front page as data: each alert with its numbers, and the matrix."""
    view = lab_view(db, query)
    alerts = []
    for row in view["alerts"]:
        alert: Alert = row["alert"]
        alerts.append(
            {
                "id": alert.id,
                "triage": alert.triage.__dict__,
                **{name: getattr(alert, name) for name in ("model", "nodeid", "device", "metric")},
                "kind": alert.kind,
                "change": alert.change,
                "low": alert.regression.low,
                "high": alert.regression.high,
                "found_by": alert.regression.found_by,
                "good": (alert.good.commit or alert.good.run) if alert.good else None,
                "bad": alert.bad.commit or alert.bad.run,
                "links": row["links"],
            }
        )
    states = [
        {"model": model, "device": device, "state": state}
        for (model, device), state in view["lab"].states.items()
    ]
    return {"alerts": alerts, "states": states}


def _alert_view(alert: Alert) -> dict[str, Any]:
    good, bad = alert.good, alert.bad
    item = quote(alert.nodeid, safe="")
    metric = quote(alert.metric, safe="")
    links = {"trend": f"/trend?item={item}&metric={metric}"}
    if good is not None:
        links["compare"] = f"/compare?a={good.run}&b={bad.run}"
    if alert.kind == history.AB_RATIO:
        links["A/B"] = f"/runs/{bad.run}/ab?item={item}"
    return {
        "alert": alert,
        "change": alert.change_words,
        "interval": alert.interval_words or "-",
        "since": _commit(bad),
        "bisect": alert.bisect_range,
        "links": links,
    }


# -- the runs ---------------------------------------------------------------------------------


def run_list(db: Connection, filters: history.Filters) -> list[dict[str, Any]]:
    """Newest first, as a person looks for the last run."""
    rows = history.run_rows(db, filters)
    fields = ("created", "run", "commit", "branch", "node", "items", "metric_rows")
    listed = [dict(zip(fields, row, strict=True)) for row in reversed(rows)]
    names = history.item_names(db, [run["run"] for run in listed])
    return [run | {"names": names[run["run"]]} for run in listed]


@dataclass
class ItemView:
    nodeid: str
    device: str
    outcome: str
    key: str | None
    p50: str
    spread: str
    verdicts: list[dict[str, Any]]
    ab: bool
    cold: dict[str, str]  # "load", "first inference", "peak memory": p50 with its unit


COLD_COLUMNS = {
    "load": "NET load",
    "first inference": "NET first_inference",
    "peak memory": "NET peak_memory",
}


def run_view(run: RunFile) -> dict[str, Any]:
    """A run's items with their headline figures, and the operator and energy charts."""
    measured = [item for item in run["items"] if item.get("metrics")]
    return {
        "run": run,
        "items": [_item_view(item) for item in measured],
        "cold_columns": list(COLD_COLUMNS),
        "charts": {
            **{
                f"ops-{index}": _operator_chart(item)
                for index, item in enumerate(measured)
                if item.get("operators")
            },
            **({"energy": energy} if (energy := _energy_chart(measured)) else {}),
        },
    }


def _item_view(item: ItemRecord) -> ItemView:
    key = main_key(item)
    metric: Mapping[str, Any] = by_key(item["metrics"]).get(key or "") or {}
    summary: Mapping[str, Any] = metric.get("summary") or {}
    unit = metric.get("unit") or ""
    spread = (
        f"{format_number(summary['p10'])} to {format_number(summary['p90'])}"
        if "p10" in summary and "p90" in summary
        else "-"
    )
    return ItemView(
        nodeid=item["nodeid"],
        device=_device_name(item),
        outcome=str(item.get("outcome") or "-"),
        key=key,
        p50=f"{format_number(summary.get('p50'))} {unit}".strip() if summary else "-",
        spread=spread,
        verdicts=[_verdict_view(v) for v in item.get("verdicts") or []],
        ab=item.get("comparison") == "ab",
        cold={name: _p50(item, key) for name, key in COLD_COLUMNS.items()},
    )


def _p50(item: ItemRecord, key: str) -> str:
    """A metric's p50 with its unit (a tool's mean where it printed no median), or '-'."""
    metric: Mapping[str, Any] = by_key(item["metrics"]).get(key) or {}
    summary: Mapping[str, Any] = metric.get("summary") or {}
    value = summary.get("p50", summary.get("mean"))
    return "-" if value is None else f"{format_number(value)} {metric.get('unit') or ''}".strip()


def _device_name(item: Mapping[str, Any]) -> str:
    device = item.get("device") or {}
    return str(device.get("name") or device.get("id") or "-")


def _verdict_view(verdict: Mapping[str, Any]) -> dict[str, Any]:
    ratio, low, high = verdict.get("ratio"), verdict.get("low"), verdict.get("high")
    detectable = verdict.get("detectable")
    return {
        "key": verdict.get("key"),
        "status": verdict.get("status"),
        "change": "-" if ratio is None else f"{(ratio - 1) * 100:+.1f}%",
        "interval": "-"
        if low is None or high is None
        else f"{(low - 1) * 100:+.1f}% to {(high - 1) * 100:+.1f}%",
        "detects": "-" if detectable is None else detection_words(detectable),
    }


def _operator_chart(item: ItemRecord, top: int = 10) -> dict[str, Any]:
    operators = list(item.get("operators") or [])[:top][::-1]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": [op.get("mean") or 0 for op in operators],
                "y": [f"{op['name']} ({op['type']})" for op in operators],
                "marker": {"color": TREATMENT},
                "hovertemplate": "%{y}<br>mean %{x:.4g} us per run<extra></extra>",
            }
        ],
        "layout": _layout(
            f"top operators: {item['nodeid'].rpartition('::')[2]}",
            "mean us per run",
            height=140 + 26 * len(operators),
        ),
    }


def _energy_chart(items: Sequence[ItemRecord]) -> dict[str, Any] | None:
    rows = energy_rows(items)
    if not rows:
        return None
    spreads = [_spread(metric["summary"]) for _, metric in rows]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": [middle for _, middle, _ in spreads],
                "y": [f"{item['nodeid']} · {m['metric']} ({m['unit']})" for item, m in rows],
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": [high - middle for _, middle, high in spreads],
                    "arrayminus": [middle - low for low, middle, _ in spreads],
                },
                "marker": {"color": "#dd6b20"},
                "hovertemplate": "%{y}<br>p50 %{x:.4g}<extra></extra>",
            }
        ],
        "layout": _layout("energy and power", "p50, whiskers p10 to p90", 140 + 30 * len(rows)),
    }


def _spread(summary: Mapping[str, Any]) -> tuple[float, float, float]:
    """p10, p50 and p90 (the p50 where a percentile is missing)."""
    middle = float(summary.get("p50") or summary.get("mean") or 0.0)
    return float(summary.get("p10", middle)), middle, float(summary.get("p90", middle))


def _layout(title: str, x_title: str, height: int = 360) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}, "x": 0.02},
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "xaxis": {"title": {"text": x_title}, "automargin": True},
        "yaxis": {"automargin": True},
        "hovermode": "closest",
    }


# -- one item's trend, per device -------------------------------------------------------------


@dataclass
class ChangeView:
    device: str
    before: str
    after: str
    change: str
    p_value: str


@dataclass
class TrendView:
    item: str
    metric: str
    chart: dict[str, Any] | None
    changes: list[ChangeView] = field(default_factory=list)
    runs: int = 0
    by_commit: bool = False  # the x axis: commits in order, else the runs' time


def trend_view(db: Connection, nodeid: str, metric: str | None) -> TrendView:
    """The item's metric on every device it ran on, in commit order (one place per commit,
    where every run has one; the runs' time otherwise): the p50 line, the p10-p90 band, and
    the change points (the continuous mode's) drawn where they fall, with their size."""
    found = history.series(db, history.Filters(nodeid=nodeid, metric=metric))
    if not found:
        return TrendView(nodeid, metric or "-", None)
    metric = metric or next(iter(found))[2]
    chosen = sorted((key, points) for key, points in found.items() if key[2] == metric)
    view = TrendView(nodeid, metric, None, runs=sum(len(points) for _, points in chosen))
    by_commit = all(point.commit for _, points in chosen for point in points)
    place = _commit_places(chosen) if by_commit else None
    traces: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for colour, ((_, device, _, kind), points) in zip(
        itertools.cycle(_PALETTE), chosen, strict=False
    ):
        x: list[Any] = [place[point.commit or ""] if place else point.created for point in points]
        label = f"{device or 'no device'} ({kind})"
        # a ratio near 1 beside times in ms: on an axis of its own
        traces += [*_band(x, points, colour, label), _line(x, points, colour, label, kind)]
        for step in series_changes(points):
            where = x[step.index] - 0.5 if place else x[step.index]
            shapes.append(_change_line(where, colour))
            notes.append(_change_note(where, step, points[step.index], colour, len(notes)))
            view.changes.append(_change_view(device, points, step))
    view.chart = {"data": traces, "layout": _trend_layout(nodeid, metric, place, traces)}
    view.chart["layout"] |= {"shapes": shapes, "annotations": notes}
    view.by_commit = by_commit
    return view


def _commit_places(chosen: Sequence[tuple[Any, Sequence[history.SeriesPoint]]]) -> dict[str, int]:
    """Each commit's place on the x axis, oldest first: runs of one commit share a place."""
    order = sorted(  # commits made in one second (a script's) keep the order they ran in
        (point.commit_time or point.created, point.created, point.commit or "")
        for _, points in chosen
        for point in points
    )
    places: dict[str, int] = {}
    for _, _, commit in order:
        places.setdefault(commit, len(places))
    return places


def _trend_layout(
    nodeid: str, metric: str, place: Mapping[str, int] | None, traces: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    if place:
        x_title = "commit, oldest first (one place per commit)"
    else:
        x_title = "run time (these runs name no commit)"
    layout = _layout(f"{nodeid} · {metric}", x_title, height=440)
    layout["margin"] = {"l": 70, "r": 80, "t": 60, "b": 60}
    layout["yaxis"] = {"title": {"text": metric}, "automargin": True}
    if place:
        commits = sorted(place, key=place.__getitem__)
        layout["xaxis"] |= {
            "tickmode": "array",
            "tickvals": list(range(len(commits))),
            "ticktext": [commit[:8] for commit in commits],
            "tickangle": -45,
        }
    if any(trace.get("yaxis") == "y2" for trace in traces):
        layout["yaxis2"] = {
            "title": {"text": "A/B ratio (treatment / control)"},
            "overlaying": "y",
            "side": "right",
            "automargin": True,
            "tickformat": ".3f",
        }
        layout["legend"] = {"orientation": "h", "y": -0.3}
    return layout


def _change_note(
    x: Any, step: Step, after: history.SeriesPoint, colour: str, count: int
) -> dict[str, Any]:
    """The change point's size and commit, written beside its line."""
    return {
        "x": x,
        "y": 1 - 0.07 * count,
        "xref": "x",
        "yref": "paper",
        "text": f"{step.change * 100:+.1f}% at {(after.commit or after.run)[:8]}",
        "showarrow": False,
        "xanchor": "left",
        "font": {"color": colour, "size": 12},
        "bgcolor": "rgba(255,255,255,0.8)",
    }


def _line(
    x: list[Any], points: Sequence[history.SeriesPoint], colour: str, label: str, kind: str
) -> dict[str, Any]:
    """The values, with what a hover shows (commit, subject, value, run) and a click opens."""
    return {
        "yaxis": "y2" if kind == history.AB_RATIO else "y",
        "type": "scatter",
        "mode": "lines+markers",
        "name": label,
        "x": x,
        "y": [point.value for point in points],
        "line": {"color": colour},
        "customdata": [
            [(point.commit or "-")[:12], point.subject or "", point.run] for point in points
        ],
        "hovertemplate": "%{customdata[0]} %{customdata[1]}<br>%{y:.4g}"
        "<br>run %{customdata[2]}<extra>" + label + "</extra>",
    }


def _change_view(device: str, points: Sequence[history.SeriesPoint], step: Step) -> ChangeView:
    low, high = ((bound - 1) * 100 for bound in (step.low, step.high))
    return ChangeView(
        device or "-",
        _commit(points[step.index - 1]),
        _commit(points[step.index]),
        f"{step.change * 100:+.1f}% ({low:+.1f}% to {high:+.1f}%)",
        f"{step.p_value:.1e}",
    )


_PALETTE = ["#2563eb", "#dc2626", "#059669", "#7c3aed", "#d97706", "#0891b2"]


def _band(
    x: list[Any], points: Sequence[history.SeriesPoint], colour: str, label: str
) -> list[dict[str, Any]]:
    if any(point.p10 is None or point.p90 is None for point in points):
        return []
    edge = {"type": "scatter", "mode": "lines", "x": x, "line": {"width": 0}, "hoverinfo": "skip"}
    return [
        {**edge, "y": [point.p90 for point in points], "showlegend": False, "name": "p90"},
        {
            **edge,
            "y": [point.p10 for point in points],
            "fill": "tonexty",
            "fillcolor": colour + "22",
            "name": f"{label} p10-p90",
        },
    ]


def _change_line(x: Any, colour: str) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": colour, "dash": "dot", "width": 2},
    }


def _commit(point: history.SeriesPoint) -> str:
    return f"{(point.commit or '-')[:10]} {(point.subject or '')[:40]}".strip()


# -- two runs (or commits) side by side, with the verdicts ------------------------------------


def compare_view(
    control: RunFile, treatment: RunFile, min_effect: float, alpha: float, force: bool = False
) -> list[dict[str, Any]]:
    """Every item both runs measured on the same device, judged as --aibench-compare would (by
    the same rule: an item whose workload changed is not judged unless ``force``)."""
    theirs = {_pair_key(item): item for item in control["items"] if item.get("metrics")}
    rule = ControlRun("the control run", {}, min_effect=min_effect, alpha=alpha, force=force)
    rows = []
    for item in treatment["items"]:
        other = theirs.get(_pair_key(item))
        if not item.get("metrics") or other is None:
            continue
        judgement = rule.judge_pair(other, item)
        where = {"item": item["nodeid"], "device": _device_name(item), "note": judgement.note}
        if not judgement.verdicts:
            rows.append({**where, **_not_judged(judgement)})
        for verdict in judgement.verdicts:
            record = verdict.to_dict()
            rows.append(
                {
                    **where,
                    "control": format_number(record["control"]),
                    "treatment": format_number(record["treatment"]),
                    "unit": record["unit"],
                    **_verdict_view(record),
                }
            )
    return rows


def _not_judged(judgement: Judgement) -> dict[str, Any]:
    status = "refused" if judgement.state == "refused" else "not judged"
    return {
        "key": "-",
        "control": "-",
        "treatment": "-",
        "unit": "",
        "change": "-",
        "interval": "-",
        "status": status,
    }


def _pair_key(item: Mapping[str, Any]) -> tuple[str, str]:
    return item["nodeid"], str((item.get("device") or {}).get("hash") or "")


# -- an A/B item: control and treatment distributions -----------------------------------------


def ab_view(item: ItemRecord) -> dict[str, Any]:
    control = by_key(((item.get("extra") or {}).get("ab") or {}).get("control") or [])
    treatment = by_key(item["metrics"])
    charts = {
        f"ab-{index}": _distributions(key, control[key], treatment[key])
        for index, key in enumerate(sorted(set(control) & set(treatment)))
        if control[key].get("values") and treatment[key].get("values")
    }
    return {
        "item": item,
        "charts": charts,
        "verdicts": [_verdict_view(v) for v in item.get("verdicts") or []],
    }


def _distributions(key: str, control: MetricDict, treatment: MetricDict) -> dict[str, Any]:
    traces = [
        {
            "type": "violin",
            "name": name,
            "y": metric["values"],
            "box": {"visible": True},
            "meanline": {"visible": True},
            "points": "all" if len(metric["values"]) <= 200 else False,
            "line": {"color": colour},
            "hoverinfo": "y",
        }
        for name, metric, colour in (
            ("control", control, CONTROL),
            ("treatment", treatment, TREATMENT),
        )
    ]
    layout = _layout(f"{key}: samples of each side", "")
    layout["yaxis"] = {
        "title": {"text": f"{key} ({treatment.get('unit') or ''})"},
        "automargin": True,
    }
    return {"data": traces, "layout": layout}
