"""The HTML report: what its plots say, and the page as headless Chromium shows it."""

import base64
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pytest import Pytester

from pytest_aibench.records import CommitDict, ItemRecord
from pytest_aibench.reporting import html_report
from pytest_aibench.store.history import TrendPoint

from .chromium import check_page, find_browser
from .helpers import generic_spec, item_record, metric_record, run_file, write_json, write_program
from .report_demo import RUNS, build

pytest.importorskip("matplotlib")
needs_browser = pytest.mark.skipif(
    find_browser() is None and not os.environ.get("CI"),
    reason="no Chromium here (CI installs Debian's chromium)",
)


def item(nodeid: str, values: list[float], **fields: Any) -> ItemRecord:
    return item_record(nodeid, metric_record(values), **fields)


def svgs(page: str) -> list[str]:
    return [
        base64.b64decode(data).decode()
        for data in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    ]


def test_the_page_plots_distributions_verdicts_operators_energy_and_trends() -> None:
    verdict = {
        "key": "NET latency",
        "status": "regressed",
        "method": "mann-whitney + bootstrap",
        "statistic": "p50",
        "unit": "ms",
        "control": 10.0,
        "treatment": 12.0,
        "low": 1.15,
        "high": 1.25,
        "p_value": 0.001,
        "n_control": 3,
        "n_treatment": 3,
        "min_effect": 0.05,
        "ratio": 1.2,
    }
    ab = item(
        "a.json::a[slow-host]",
        [11.5, 12.0, 12.5],
        comparison="ab",
        verdicts=[verdict],
        extra={
            "ab": {"control": [{"type": "NET", "metric": "latency", "values": [9.5, 10.0, 10.5]}]}
        },
        operators=[{"name": "conv_7", "type": "Conv", "mean": 900.0, "share": 0.75}],
    )
    energy = item("b.json::b[e-host]", [1.0, 2.0, 3.0])
    energy["metrics"].append(metric_record([4.0, 5.0, 6.0], "energy", "mJ"))
    commit: CommitDict = {"id": "0123456789abcdef", "branch": None, "time": None, "dirty": False}
    run = run_file(ab, energy, id="r2", commit=commit, machine={"node": "lab"})
    trend = [
        TrendPoint(
            f"2026-11-2{day}T10:00:00+00:00",
            f"c{day}",
            f"r{day}",
            10.0 + day,
            9.0 + day,
            11.0 + day,
        )
        for day in range(3)
    ]
    page = html_report.render(run, trends={"a.json::a[slow-host]": trend})
    for heading in (
        "Summary",
        "Distributions",
        "Control vs treatment",
        "Top 10 operators",
        "Energy and power",
        "Trends",
    ):
        assert f"<h2>{heading}" in page
    assert '<td class="text regressed">regressed</td>' in page
    assert "NET latency p50 regressed: 10 -&gt; 12 ms (+20.0%" in page
    figures = svgs(page)
    distribution = next(svg for svg in figures if "a[slow-host]" in svg and "control" in svg)
    assert "regressed +20.0%" in distribution and "treatment" in distribution
    assert any("conv_7 (Conv)" in svg and "75%" in svg for svg in figures)
    assert any("energy (mJ)" in svg for svg in figures)
    trend_svg = next(svg for svg in figures if "NET latency p50 (ms)" in svg)
    assert "#3 11-22 10:00" in trend_svg and "c2" in trend_svg
    assert "#c05621" in trend_svg  # this run (r2) is marked
    other_run = run.copy()
    other_run["id"] = "r9"
    other = html_report.render(other_run, trends={"a.json::a[slow-host]": trend})
    assert "#c05621" not in next(svg for svg in svgs(other) if "NET latency p50 (ms)" in svg)
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org", "")


def test_a_run_without_history_or_control_leaves_those_sections_out() -> None:
    page = html_report.render(run_file(item("x::y", [1.0, 2.0, 3.0])))
    assert "<h2>Distributions" in page
    assert "Trends" not in page and "Control vs treatment" not in page


def test_a_saved_control_run_is_plotted_beside_the_item() -> None:
    treatment = item(
        "m.json::m[t-host]", [2.0, 2.1, 2.2], comparison="compared", device={"kind": "host"}
    )
    control = item("m.json::m[t-host]", [5.0, 5.5, 6.0], device={"kind": "host"})
    page = html_report.render(run_file(treatment), control_items=[control])
    distribution = next(svg for svg in svgs(page) if "m[t-host]" in svg)
    assert "control" in distribution and "treatment" in distribution
    assert "Grey: control, blue: treatment." in page


def test_a_compare_run_plots_the_saved_control_beside_each_item(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    pytester.runpytest("--aibench-spec=demo.json", "--aibench-save=base").assert_outcomes(passed=1)
    pytester.runpytest(
        "--aibench-spec=demo.json", "--aibench-compare=base", "--aibench-html=report.html"
    ).assert_outcomes(passed=1)
    figures = svgs((pytester.path / "report.html").read_text())
    assert any("control" in svg and "treatment" in svg for svg in figures)


@needs_browser
def test_the_report_opens_cleanly_in_headless_chromium(tmp_path: Path) -> None:
    finished = build(tmp_path)
    assert [run.returncode for run in finished] == [0] * (RUNS - 1) + [1], finished[-1].stdout
    check = check_page(tmp_path / "report.html")
    (tmp_path / "report.png").write_bytes(check.screenshot)
    assert check.problems == []
    assert check.screenshot.startswith(b"\x89PNG")
    assert "sizes[large-host]: NET latency p50 regressed" in check.text  # the A/B verdict
    alts = [image["alt"] for image in check.images]
    assert "NET latency of specs/sizes.json::sizes[large-host]" in alts  # its distribution
    assert len([alt for alt in alts if alt.startswith("trend of ")]) == 6
    trend_svg = next(
        svg
        for svg in svgs((tmp_path / "report.html").read_text())
        if "sizes[large-host]" in svg and "p50 (ms)" in svg
    )
    assert all(f"#{run} " in trend_svg for run in range(1, RUNS + 1))  # a point per run


@needs_browser
def test_the_browser_check_catches_errors_requests_and_broken_images(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><script>console.error("boom")</script>'
        '<img alt="remote" src="http://127.0.0.1:9/x.png">'
        "<script>undefined_function()</script></body></html>"
    )
    problems = check_page(page).problems
    assert "console: boom" in problems
    assert any(p.startswith("exception: Uncaught") for p in problems)
    assert "request: http://127.0.0.1:9/x.png" in problems
    assert "image did not render: remote" in problems


def test_the_summary_shows_cold_start_and_memory_beside_the_latency() -> None:
    model = item("m.json::m[x-host]", [8.0, 8.5, 9.0])
    for metric, unit, value in (
        ("load", "us", 3569.0),
        ("first_inference", "us", 612.0),
        ("peak_memory", "MiB", 65.6),
    ):
        model["metrics"].append(metric_record([value], metric, unit))
    page = html_report.render(run_file(model))
    summary = page.split("<h2>Summary</h2>")[1].split("<h2>")[0]
    for row in ("NET load", "NET first_inference", "NET peak_memory"):
        assert f'<td class="text">{row}</td>' in summary, row
    assert "<td>65.60</td>" in summary and '<td class="text">MiB</td>' in summary


def test_the_verdict_column_shows_verdicts_and_says_what_was_not_judged() -> None:
    """An A/B item judges its gated metric; its other rows were not judged (not "ab")."""
    from .helpers import verdict_dict

    ab = item_record(
        "a.json::a[ab-host]",
        metric_record([1.0, 1.1, 1.2]),
        metric_record([300.0], metric="peak_memory", unit="MiB"),
        comparison="ab",
        verdicts=[verdict_dict("NET latency", "unchanged", 1.01)],
    )
    moved = item_record("a.json::a[moved-host]", metric_record([1.0]), comparison="changed")
    page = html_report.render(run_file(ab, moved))
    verdict_cells = re.findall(r'<td class="text[^"]*">([^<]*)</td></tr>', page)
    assert verdict_cells == ["unchanged", "not judged", "workload changed"]
