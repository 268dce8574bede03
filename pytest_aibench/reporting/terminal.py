"""The terminal summary: one row per item and metric key, whole-net rows first."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from ..metrics import by_key, main_key, net_first
from ..records import INCONCLUSIVE, REGRESSED, ItemRecord, MetricDict, Payload, Results, VerdictDict
from ..verdicts.gate import item_key, what_changed
from ..verdicts.statistics import DETECTION_WORDS, detection_words, disagreement

if TYPE_CHECKING:
    from ..verdicts.agreement import Row
    from ..verdicts.gate import ControlRun

COLUMNS = ("item", "metric", "p50", "p10", "p90", "MAD", "n", "unit")
COMPARE_COLUMNS = (*COLUMNS, "control", "change", "detects", "verdict")
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


def headline(payload: Payload) -> str:
    """``NET latency p50 3.64 us on Pixel 7``: what pytest -v shows after PASSED/FAILED."""
    key = main_key(payload)
    info = payload.get("device")
    device = info["name"] if info else None
    text = ""
    if key:
        metric = by_key(payload["metrics"])[key]
        p50 = (metric.get("summary") or {}).get("p50")
        text = f"{key} p50 {format_number(p50)} {metric.get('unit') or ''}".rstrip()
    return f"{text} on {device}" if device and text else text


def summary_rows(items: Iterable[ItemRecord], compared: bool = False) -> list[tuple[str, ...]]:
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


# What the verdict column says of a metric without a verdict, by the item's comparison state:
# the gate and A/B judge the gated metrics only; the other states judged nothing.
_NOT_JUDGED = {
    "compared": "not judged",
    "ab": "not judged",
    "changed": "workload changed",
    "unmatched": "no control",
    "refused": "refused",
}


def _verdict_cells(verdict: VerdictDict | None, item: ItemRecord) -> tuple[str, ...]:
    if verdict is None:
        return "-", "-", "-", _NOT_JUDGED.get(item.get("comparison") or "", "-")
    ratio, detectable = verdict.get("ratio"), verdict.get("detectable")
    change = "-" if ratio is None else f"{(ratio - 1) * 100:+.1f}%"
    detects = "-" if detectable is None else f"{detectable * 100:+.1f}%"
    return format_number(verdict.get("control")), change, detects, str(verdict["status"])


def operator_rows(items: Iterable[ItemRecord], top: int) -> list[tuple[str, ...]]:
    """The ``top`` most expensive operators of each item (``operators`` is sorted already)."""
    rows: list[tuple[str, ...]] = []
    for item in sorted(items, key=lambda entry: str(entry["nodeid"])):
        for op in item.get("operators", [])[:top]:
            share = "-" if op["share"] is None else f"{op['share']:.1%}"
            rows.append(
                (
                    str(item["nodeid"]),
                    op["name"],
                    op["type"],
                    format_number(op["mean"]),
                    format_number(op["p50"]),
                    "-" if op["calls"] is None else str(op["calls"]),
                    share,
                )
            )
    return rows


def render_table(
    rows: Sequence[Sequence[str]],
    header: Sequence[str] = COLUMNS,
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


class Terminal(Protocol):
    """What the summary is written to: pytest's terminal reporter, or anything alike."""

    def write_sep(self, sep: str, title: str) -> None: ...

    def write_line(self, line: str, **markup: bool) -> None: ...


def write_summary(
    terminal: Terminal,
    items: Collection[ItemRecord],
    control: ControlRun | None,
    top_operators: int,
) -> None:
    """The metric table, the operator table, unparsed observer rows and, after a comparison,
    what was and was not judged."""
    _metric_table(
        terminal, items, compared=control is not None or any("comparison" in item for item in items)
    )
    operators = operator_rows(items, top_operators)
    if operators:
        terminal.write_sep("-", f"aibench: top {top_operators} operators per item")
        for line in render_table(operators, OPERATOR_COLUMNS, text_columns=(0, 1, 2)):
            terminal.write_line(line)
    _unparsed_rows(terminal, items)
    _inconclusive_lines(terminal, items)
    if control is not None:
        _comparison_lines(terminal, items, control)


def undecided(item: Results) -> list[VerdictDict]:
    """An item's A/B verdicts that the time budget ended before they were decided."""
    return [verdict for verdict in item.get("verdicts", []) if verdict["status"] == INCONCLUSIVE]


def _inconclusive_lines(terminal: Terminal, items: Collection[ItemRecord]) -> None:
    """Each item A/B left undecided, why, and what would decide it: it passed, and must not
    pass in silence."""
    for item in items:
        for verdict in undecided(item):
            ab = (item.get("extra") or {}).get("ab") or {}
            terminal.write_line(
                f"aibench: INCONCLUSIVE {item['nodeid']}: {verdict['key']} undecided after "
                f"{verdict['n_control']} paired blocks, {ab.get('seconds', 0):.0f} s "
                f"({_why_undecided(verdict)}); to decide it: more time (--aibench-ab-max-time, "
                "--aibench-ab-time-limit), fewer threads, a quieter device; "
                "--aibench-fail-inconclusive fails such items",
                yellow=True,
            )


def _why_undecided(verdict: VerdictDict) -> str:
    """Noise, when the pairs spread wider than the change that matters; else the budget."""
    detectable, wanted = verdict.get("detectable"), verdict["min_effect"]
    if detectable is not None and abs(detectable) > wanted:
        return (
            f"noise: {detection_words(detectable)}, the rule asks "
            f"{wanted:.1%} (--aibench-ab-min-effect)"
        )
    return "the time budget ran out before the interval cleared the rule's band"


def _metric_table(terminal: Terminal, items: Collection[ItemRecord], compared: bool) -> None:
    rows = summary_rows(items, compared)
    if not rows:
        return
    measured = sum(1 for item in items if item["metrics"])
    terminal.write_sep("-", f"aibench: {len(rows)} metric rows from {measured} items")
    header, text = (COMPARE_COLUMNS, (0, 1, 7, 10)) if compared else (COLUMNS, (0, 1, 7))
    for line in render_table(rows, header, text):
        terminal.write_line(line)
    if compared:
        terminal.write_line(
            f"detects: the smallest slowdown the verdict's rule catches {DETECTION_WORDS} "
            "at the spread it saw"
        )


def _unparsed_rows(terminal: Terminal, items: Iterable[ItemRecord]) -> None:
    """Observer rows whose JSON did not parse: how many, where, and the first of them."""
    for item in items:
        unparsed = (item.get("extra") or {}).get("unparsed_rows")
        if unparsed:
            terminal.write_line(
                f"aibench: {item['nodeid']}: {unparsed['count']} observer row(s) could not "
                f"be parsed and were left out, e.g. {unparsed['examples'][0]!r}",
                yellow=True,
            )


def _comparison_lines(
    terminal: Terminal, items: Collection[ItemRecord], control: ControlRun
) -> None:
    def state(name: str) -> list[str]:
        return sorted(item["nodeid"] for item in items if item.get("comparison") == name)

    gone = control.unseen({item_key(item) for item in items})
    for label, nodeids in (
        ("not in the control run", state("unmatched")),
        ("whose inputs or model files changed", state("changed")),
        ("in the control run only", gone),
    ):
        if nodeids:
            terminal.write_line(
                f"aibench: {len(nodeids)} items {label} (reported, "
                f"not judged): {', '.join(nodeids)}"
            )
    forced = _judged_although_changed(items, control)
    if forced:
        terminal.write_line(
            f"aibench: {len(forced)} items judged although their inputs or model files changed "
            f"(--aibench-compare-force): {', '.join(forced)}",
            yellow=True,
        )
    for item in items:
        for verdict in item.get("verdicts", []):
            if (runs := disagreement(verdict)) is not None:
                terminal.write_line(
                    f"aibench: {item['nodeid']}: {verdict['key']}: {runs}", yellow=True
                )
    regressed = [
        verdict
        for item in items
        for verdict in item.get("verdicts", [])
        if verdict["status"] == REGRESSED
    ]
    terminal.write_line(f"aibench: compared with {control.name}: {len(regressed)} regression(s)")


def write_agreement(terminal: Terminal, rows: Sequence[Row]) -> None:
    """``--aibench-reference`` or the specs' ``reference``: per network and device, each
    framework's largest absolute error against the reference's outputs (``*``: beyond the
    golden tolerance)."""
    frameworks = sorted({name for row in rows for name in row.errors})
    references = sorted({row.reference for row in rows})
    against = references[0] if len(references) == 1 else "each network's reference"
    measure = "max abs error of the outputs"
    if any(row.divergence for row in rows):
        measure += "; of generated tokens, the first that differs"
    terminal.write_sep("-", f"aibench: agreement with {against} ({measure})")
    cells = []
    for row in rows:
        model, identifier, device = row.key
        values = [_agreement_cell(row, name) for name in frameworks]
        cells.append((f"{model}[{identifier}]", device or "-", row.reference, *values, row.note))
    header = ("network", "device", "reference", *frameworks, "note")
    for line in render_table(cells, header, (0, 1, 2, len(header) - 1)):
        terminal.write_line(line)


def _agreement_cell(row: Row, framework: str) -> str:
    mark = "*" if framework in row.beyond else ""
    if row.divergence and framework == row.reference:
        return "reference"
    if framework in row.divergence:
        position = row.divergence[framework]
        return "tokens agree" if position is None else f"token {position} differs{mark}"
    error = row.errors.get(framework)
    return "-" if error is None else format_number(error) + mark


ENERGY_METRICS = ("energy", "power", "average_power")


def energy_rows(items: Iterable[ItemRecord]) -> list[tuple[ItemRecord, MetricDict]]:
    """Each item's whole-net energy and power metrics that have a summary, as the HTML report
    and the dashboard chart them."""
    return [
        (item, metric)
        for item in items
        for metric in item["metrics"]
        if metric["type"] == "NET" and metric["metric"] in ENERGY_METRICS and metric.get("summary")
    ]


def _judged_although_changed(items: Iterable[ItemRecord], control: ControlRun) -> list[str]:
    """Node ids judged under --aibench-compare-force against a control of another workload."""
    return sorted(
        item["nodeid"]
        for item in items
        if item.get("comparison") == "compared"
        and (theirs := control.items.get(item_key(item))) is not None
        and what_changed(theirs, item)
    )
