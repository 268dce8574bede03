"""The HTML report: one self-contained page a person can read in ten seconds.

What it shows, top to bottom: the run (commit, machine, outcome), the summary table with the
verdicts, each item's distribution (control beside treatment when there is one), the verdicts
in words, the most expensive operators, energy, and each item's trend over the runs in the
history store. Plots are matplotlib figures saved as SVG and embedded as data URIs, so the page
needs no network and no script, and figures cannot clash over SVG element ids.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import write_text
from ..metrics import by_key, main_key
from ..records import IMPROVED, REGRESSED, ItemRecord, MetricDict, RunFile, VerdictDict
from ..verdicts.changes import change_points
from ..verdicts.gate import item_key
from ..verdicts.statistics import Verdict
from .terminal import COLUMNS, COMPARE_COLUMNS, energy_rows, summary_rows

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..store.history import TrendPoint

CONTROL, TREATMENT = "#8a96a3", "#2b6cb0"
CHANGE = "#c53030"  # change points on trend lines
STATUS_COLOURS = {REGRESSED: "#c53030", IMPROVED: "#2f855a"}
MOST_TRENDS = 24

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1a202c; margin: 24px auto;
       max-width: 1200px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.run { color: #4a5568; } .run b { color: #1a202c; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e2e8f0; text-align: right; }
th { background: #f7fafc; } td.text, th.text { text-align: left; }
td:not(.text), th:not(.text) { white-space: nowrap; }
.regressed { color: #c53030; font-weight: 600; } .improved { color: #2f855a; font-weight: 600; }
.failed { color: #c53030; } .grid { display: grid; gap: 12px;
  grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); }
figure { margin: 8px 0; } figure img { max-width: 100%; }
ul.verdicts li { margin: 4px 0; font-family: ui-monospace, monospace; font-size: 13px; }
"""


def write(path: Path, run: RunFile, **options: Any) -> None:
    write_text(path, render(run, **options))


def render(
    run: RunFile,
    *,
    control_items: Iterable[ItemRecord] = (),
    trends: Mapping[str, Sequence[TrendPoint]] | None = None,
    top_operators: int = 10,
) -> str:
    items = sorted(
        (item for item in run["items"] if item.get("metrics")), key=lambda item: str(item["nodeid"])
    )
    control = {item_key(item): item for item in control_items if item.get("metrics")}
    controls = {item["nodeid"]: _control_values(item, control) for item in items}
    sections = [
        _run_header(run, items),
        _summary(items),
        _distributions(items, controls),
        _verdicts(items),
        _operators(items, top_operators),
        _energy(items),
        _trends(items, trends or {}, str(run.get("id", ""))),
    ]
    body = "\n".join(section for section in sections if section)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>pytest-aibench report {html.escape(str(run['created']))}</title>"
        f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


# -- what to plot -----------------------------------------------------------------------------


def _metrics(item: ItemRecord) -> dict[str, MetricDict]:
    return by_key(item["metrics"])


def _control_values(
    item: ItemRecord, control_items: Mapping[tuple[str, str], ItemRecord]
) -> list[float] | None:
    """The control's samples of the item's main key: the A/B control, else the control run's."""
    key = main_key(item)
    ab = ((item.get("extra") or {}).get("ab") or {}).get("control")
    matched = control_items.get(item_key(item))
    control = by_key(ab) if ab is not None else _metrics(matched) if matched else {}
    values = control[key]["values"] if key and key in control else None
    return list(values) if values else None


def _verdict(item: ItemRecord, key: str) -> VerdictDict | None:
    return next((v for v in item.get("verdicts", []) if v["key"] == key), None)


def _label(nodeid: str, width: int = 48) -> str:
    name = nodeid.rpartition("::")[2] or nodeid
    return name if len(name) <= width else name[: width - 1] + "…"


# -- sections -------------------------------------------------------------------------------


def _run_header(run: RunFile, items: Sequence[ItemRecord]) -> str:
    commit: Mapping[str, Any] = run.get("commit") or {}
    machine = run.get("machine") or {}
    failed = sum(1 for item in items if item.get("outcome") != "passed")
    regressions = sum(
        1 for item in items for v in item.get("verdicts", []) if v["status"] == REGRESSED
    )
    facts = [f"<b>{len(items)}</b> items measured, <b>{failed}</b> failed"]
    if any("verdicts" in item for item in items):
        facts.append(f"<b>{regressions}</b> regressions")
    where = (
        f"commit <b>{html.escape(str(commit.get('id', ''))[:12])}</b>"
        if commit
        else "no git commit"
    )
    if commit.get("dirty"):
        where += " (uncommitted changes)"
    host = " · ".join(html.escape(str(machine[key])) for key in ("node", "cpu") if machine.get(key))
    return (
        f'<h1>pytest-aibench report</h1><p class="run">{html.escape(str(run["created"]))}'
        f" · {where} · {host}<br>{' · '.join(facts)}</p>"
    )


def _summary(items: Sequence[ItemRecord]) -> str:
    compared = any("comparison" in item for item in items)
    header = COMPARE_COLUMNS if compared else COLUMNS
    text = {0, 1, len(COLUMNS) - 1, len(COMPARE_COLUMNS) - 1}
    verdict = len(COMPARE_COLUMNS) - 1
    head = "".join(
        _cell("th", name, ["text"] if i in text else []) for i, name in enumerate(header)
    )
    rows = "".join(
        "<tr>"
        + "".join(
            _cell(
                "td",
                value,
                (["text"] if i in text else [])
                + ([value] if i == verdict and value in STATUS_COLOURS else []),
            )
            for i, value in enumerate(row)
        )
        + "</tr>"
        for row in summary_rows(items, compared)
    )
    return f"<h2>Summary</h2><table><tr>{head}</tr>{rows}</table>"


def _cell(tag: str, value: str, classes: Sequence[str]) -> str:
    attribute = f' class="{" ".join(classes)}"' if classes else ""
    return f"<{tag}{attribute}>{html.escape(value)}</{tag}>"


def _distributions(items: Sequence[ItemRecord], controls: Mapping[str, list[float] | None]) -> str:
    """One small panel per item, each on its own scale: items of different sizes on one axis
    would squash all but the slowest into a line."""
    figures = [
        _figure(
            _distribution_plot(item, key, controls.get(item["nodeid"])),
            f"{key} of {item['nodeid']}",
        )
        for item in items
        if (key := main_key(item))
    ]
    if not figures:
        return ""
    legend = " Grey: control, blue: treatment." if any(controls.values()) else ""
    return (
        "<h2>Distributions</h2><p>Every sample is a dot; boxes span p25 to p75 around the "
        f'median, whiskers p10 to p90.{legend}</p><div class="grid">{"".join(figures)}'
        "</div>"
    )


def _distribution_plot(item: ItemRecord, key: str, control: Sequence[float] | None) -> Figure:
    metric = _metrics(item)[key]
    values = list(metric["values"])
    rows = [("treatment", values, TREATMENT)]
    if control:
        rows.insert(0, ("control", list(control), CONTROL))
    figure, axes = _new_figure(5.5, 1.3 + 0.55 * len(rows))
    for position, (_, samples, colour) in enumerate(reversed(rows)):
        _box(axes, samples, position, colour)
    axes.set_yticks(range(len(rows)), [name for name, _, _ in reversed(rows)] if control else [""])
    _limit_outliers(axes, [value for _, samples, _ in rows for value in samples])
    verdict = _verdict(item, key)
    title = _label(item["nodeid"], 56)
    axes.set_title(title, fontsize=10, loc="left")
    if verdict:
        ratio = verdict.get("ratio")
        change = "" if ratio is None else f" {(ratio - 1) * 100:+.1f}%"
        axes.set_title(
            f"{verdict['status']}{change}",
            fontsize=10,
            loc="right",
            fontweight="bold",
            color=STATUS_COLOURS.get(verdict["status"], "#4a5568"),
        )
    unit = metric.get("unit") or ""
    axes.set_xlabel(f"{key} ({unit})" if unit else key, fontsize=9)
    axes.grid(axis="x", alpha=0.3)
    return figure


def _limit_outliers(axes: Axes, values: Sequence[float]) -> None:
    """Zoom on p1 to p99 when a few far samples would flatten the rest, and say so."""
    import numpy as np

    low, high = np.percentile(values, [1, 99])
    spread = high - low
    outside = sum(1 for value in values if value < low - spread or value > high + spread)
    if outside and spread > 0:
        axes.set_xlim(low - 0.5 * spread, high + 0.5 * spread)
        plural = "s" if outside > 1 else ""
        axes.annotate(
            f"{outside} sample{plural} off the axis",
            xy=(1, 0),
            xycoords="axes fraction",
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=7,
            color="#718096",
        )


def _box(axes: Axes, values: Sequence[float], position: float, colour: str) -> None:
    import numpy as np

    axes.boxplot(
        [values],
        positions=[position],
        orientation="horizontal",
        widths=0.5,
        whis=(10, 90),
        showfliers=False,
        patch_artist=True,
        boxprops={"facecolor": colour, "alpha": 0.35, "edgecolor": colour},
        medianprops={"color": colour, "linewidth": 2},
        whiskerprops={"color": colour},
        capprops={"color": colour},
    )
    jitter = np.random.default_rng(len(values)).uniform(-0.18, 0.18, len(values))
    axes.scatter(values, position + jitter, s=6, color=colour, alpha=0.45, linewidths=0)


def _verdicts(items: Sequence[ItemRecord]) -> str:
    lines = [
        f'<li class="{html.escape(verdict["status"])}">{html.escape(item["nodeid"])}: '
        f"{html.escape(Verdict.from_dict(verdict).explain())}</li>"
        for item in items
        for verdict in item.get("verdicts", [])
    ]
    if not lines:
        return ""
    return '<h2>Control vs treatment</h2><ul class="verdicts">' + "".join(lines) + "</ul>"


def _operators(items: Sequence[ItemRecord], top: int) -> str:
    figures = [
        _figure(_operator_bars(item, top), f"operators of {item['nodeid']}")
        for item in items
        if item.get("operators") and top > 0
    ]
    if not figures:
        return ""
    return (
        f"<h2>Top {top} operators</h2><p>Mean time per run; the share is of the whole "
        f'net.</p><div class="grid">{"".join(figures)}</div>'
    )


def _operator_bars(item: ItemRecord, top: int) -> Figure:
    operators = list(item["operators"][:top])[::-1]
    figure, axes = _new_figure(5.5, 1.0 + 0.3 * len(operators), left=2.6, right=0.45)
    means = [op["mean"] or 0.0 for op in operators]
    bars = axes.barh(range(len(operators)), means, color=TREATMENT, alpha=0.8)
    axes.bar_label(
        bars,
        [f" {op['share']:.0%}" if op.get("share") is not None else "" for op in operators],
        fontsize=8,
    )
    axes.set_yticks(
        range(len(operators)),
        [_label(f"{op['name']} ({op['type']})", 36) for op in operators],
        fontsize=8,
    )
    axes.set_title(_label(item["nodeid"], 60), fontsize=10)
    axes.set_xlabel("mean us per run")
    return figure


def _energy(items: Sequence[ItemRecord]) -> str:
    rows = energy_rows(items)
    if not rows:
        return ""
    figure, axes = _new_figure(8.5, 1.0 + 0.45 * len(rows), left=3.6)
    for position, (_, metric) in enumerate(reversed(rows)):
        summary = metric["summary"]
        middle = summary.get("p50", summary.get("mean", 0.0))
        low, high = summary.get("p10", middle), summary.get("p90", middle)
        axes.barh(
            position,
            middle,
            xerr=[[middle - low], [high - middle]],
            color="#dd6b20",
            alpha=0.75,
            capsize=3,
        )
    axes.set_yticks(
        range(len(rows)),
        [
            f"{_label(item['nodeid'], 40)} · {metric['metric']} ({metric['unit']})"
            for item, metric in reversed(rows)
        ],
    )
    axes.set_xlabel("p50, whiskers p10 to p90")
    return "<h2>Energy and power</h2>" + _figure(figure, "energy and power per item")


def _trends(
    items: Sequence[ItemRecord], trends: Mapping[str, Sequence[TrendPoint]], this_run: str
) -> str:
    plotted = [
        (item, trends[item["nodeid"]]) for item in items if len(trends.get(item["nodeid"], ())) >= 2
    ][:MOST_TRENDS]
    if not plotted:
        return ""
    figures = [
        _figure(_trend_plot(item, points, this_run), f"trend of {item['nodeid']}")
        for item, points in plotted
    ]
    return (
        "<h2>Trends</h2><p>p50 of each item over the runs in the history store, shaded "
        "from p10 to p90; the large dot is this run; a dashed line is a change point (as "
        "<code>aibench changes</code> finds them).</p>"
        f'<div class="grid">{"".join(figures)}</div>'
    )


def _trend_plot(item: ItemRecord, points: Sequence[TrendPoint], this_run: str) -> Figure:
    key = main_key(item) or ""
    figure, axes = _new_figure(5.5, 2.8, right=0.55)
    xs = list(range(len(points)))
    lows = [point.p10 for point in points if point.p10 is not None]
    highs = [point.p90 for point in points if point.p90 is not None]
    if len(lows) == len(highs) == len(points):
        axes.fill_between(xs, lows, highs, color=TREATMENT, alpha=0.12, linewidth=0)
    axes.plot(xs, [point.p50 for point in points], marker="o", color=TREATMENT, markersize=4)
    for x, point in zip(xs, points, strict=True):
        if point.run == this_run:
            axes.plot([x], [point.p50], marker="o", color="#c05621", markersize=8)
    _mark_changes(axes, [point.p50 for point in points])
    step = max(1, len(points) // 6)
    axes.set_xticks(xs[::step], _run_labels(points)[::step], fontsize=7)
    metric = _metrics(item).get(key)
    unit = metric["unit"] if metric else ""
    axes.set_ylabel(f"{key} p50 ({unit})" if unit else f"{key} p50", fontsize=8)
    axes.set_title(_label(item["nodeid"], 60), fontsize=10)
    axes.grid(alpha=0.3)
    return figure


def _mark_changes(axes: Any, values: Sequence[float]) -> None:
    """A dashed line where the trend changes (``aibench changes``' rule), with its size."""
    for step in change_points(values, min_effect=0.01):
        x = step.index - 0.5
        axes.axvline(x, color=CHANGE, linestyle="--", linewidth=1)
        axes.annotate(
            f"{100 * step.change:+.1f}%",
            (x, max(values)),
            fontsize=7,
            color=CHANGE,
            xytext=(2, -8),
            textcoords="offset points",
        )


def _run_labels(points: Sequence[TrendPoint]) -> list[str]:
    """Position, date and commit; seconds too where runs came within a minute of each
    other."""
    times = [datetime.fromisoformat(point.created) for point in points]
    form = (
        "%m-%d %H:%M"
        if len({f"{t:%m-%d %H:%M}" for t in times}) == len(times)
        else "%m-%d %H:%M:%S"
    )
    return [
        f"#{number} {moment:{form}}\n{(point.commit or '')[:7]}"
        for number, (moment, point) in enumerate(zip(times, points, strict=True), 1)
    ]


# -- matplotlib ------------------------------------------------------------------------------


def _new_figure(
    width: float, height: float, left: float = 0.9, right: float = 0.2
) -> tuple[Figure, Axes]:
    """A figure with fixed margins (in inches; ``left`` holds the tick labels): a layout
    engine would draw every figure twice, and drawing is most of the report's time."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=0.6 / height, top=1 - 0.35 / height
    )
    return figure, figure.add_subplot()


def _figure(figure: Figure, description: str) -> str:
    """The figure as an SVG data URI in an ``<img>``: self-contained, and its element ids
    cannot clash with another figure's."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "pytest-aibench"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(description)}" '
        f'src="data:image/svg+xml;base64,{encoded}"></figure>'
    )
