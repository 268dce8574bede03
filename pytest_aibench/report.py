"""The terminal summary: one row per item and metric key, whole-net rows first."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from .metrics import by_key, net_first

COLUMNS = ("item", "metric", "p50", "p10", "p90", "MAD", "n", "unit")
COMPARE_COLUMNS = (*COLUMNS, "control", "change", "verdict")
OPERATOR_COLUMNS = ("item", "operator", "type", "mean us", "p50 us", "calls", "share")
_STATS = ("p50", "p10", "p90", "MAD")


def format_number(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 1 or value == 0:
        return f"{value:.2f}"
    return f"{value:#.3g}"


def main_key(item: Mapping[str, Any]) -> str | None:
    """The key an item is plotted by: NET latency where measured, else its first metric with
    samples (whole-net rows first)."""
    metrics = by_key(item["metrics"])
    with_values = [key for key in net_first(metrics) if metrics[key].get("values")]
    if "NET latency" in with_values:
        return "NET latency"
    return with_values[0] if with_values else None


def headline(payload: Mapping[str, Any]) -> str:
    """``NET latency p50 3.64 us on Pixel 7``: what pytest -v shows after PASSED/FAILED."""
    key = main_key(payload)
    device = (payload.get("device") or {}).get("name")
    text = ""
    if key:
        metric = by_key(payload["metrics"])[key]
        p50 = (metric.get("summary") or {}).get("p50")
        text = f"{key} p50 {format_number(p50)} {metric.get('unit') or ''}".rstrip()
    return f"{text} on {device}" if device and text else text


def summary_rows(
    items: Iterable[Mapping[str, Any]], compared: bool = False
) -> list[tuple[str, ...]]:
    """One row per item and metric key; with ``compared``, the control's value, the change
    and the verdict of every judged metric too."""
    rows = []
    for item in sorted(items, key=lambda entry: str(entry["nodeid"])):
        metrics = by_key(item["metrics"])
        verdicts = {verdict["key"]: verdict for verdict in item.get("verdicts", [])}
        for key in net_first(metrics):
            metric = metrics[key]
            if not metric["summary"]:
                continue  # info-only rows (tensor shapes, op args) have nothing to show here
            stats = [format_number(metric["summary"].get(name)) for name in _STATS]
            row = (str(item["nodeid"]), key, *stats, str(metric["num_runs"]), metric["unit"])
            rows.append(row + (_verdict_cells(verdicts.get(key), item) if compared else ()))
    return rows


def _verdict_cells(verdict: Mapping[str, Any] | None, item: Mapping[str, Any]) -> tuple[str, ...]:
    if verdict is None:
        state = item.get("comparison")
        return "-", "-", "not judged" if state == "compared" else (state or "-")
    ratio = verdict.get("ratio")
    change = "-" if ratio is None else f"{(ratio - 1) * 100:+.1f}%"
    return format_number(verdict.get("control")), change, str(verdict["status"])


def operator_rows(items: Iterable[Mapping[str, Any]], top: int) -> list[tuple[str, ...]]:
    """The ``top`` most expensive operators of each item (``operators`` is sorted already)."""
    rows: list[tuple[str, ...]] = []
    for item in sorted(items, key=lambda entry: str(entry["nodeid"])):
        for op in item.get("operators", [])[:top]:
            share = "-" if op["share"] is None else f"{op['share']:.1%}"
            rows.append((str(item["nodeid"]), op["name"], op["type"],
                         format_number(op["mean"]), format_number(op["p50"]),
                         "-" if op["calls"] is None else str(op["calls"]), share))
    return rows


def render_table(
    rows: Sequence[Sequence[str]], header: Sequence[str] = COLUMNS,
    text_columns: Collection[int] = (0, 1, 7),
) -> list[str]:
    """Aligned text: ``text_columns`` flush left, the numbers flush right."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [
            str(cell).ljust(width) if i in text_columns else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), *(line(row) for row in rows)]
