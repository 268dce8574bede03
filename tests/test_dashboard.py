"""``aibench serve``: the pages and the API over a store (Starlette's test client), and the bar
of the lab issue: runs from separate processes into one PostgreSQL store, shown by the real
server in headless Chromium."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from pytest_aibench.records import CommitDict, ItemRecord, RunFile
from pytest_aibench.store import history

from .chromium import check_pages, find_browser
from .helpers import case_dict, item_record, metric_record, operator_dict, run_file, verdict_dict
from .report_demo import _setup as demo_project

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from pytest_aibench.dashboard.app import create_app

ITEM = "lab.json::conv[x-pixel]"
TOKEN = "s3cret-token-for-the-tests"
REPOSITORY = Path(__file__).resolve().parent.parent
SCREENSHOT = REPOSITORY / "docs" / "dashboard.png"


def a_run(number: int, p50: float, *, ab: bool = False) -> RunFile:
    """Run ``number`` of a phone item whose latency is about ``p50`` ms."""
    values = [p50 * (1 + 0.01 * ((i * 7) % 5 - 2)) for i in range(20)]
    fields: dict[str, Any] = {
        "device": {"kind": "android", "id": "pixel-1", "name": "Pixel 7", "hash": "lab2:5037/R5"}
        | {"abi": "arm64-v8a", "os": "Android 14"},
        "case": case_dict(model="conv", framework="tflite", format="tflite"),
        "operators": [
            operator_dict("conv0", "CONV_2D", 700.0, 0.7) | {"p50": 690.0},
            operator_dict("fc0", "FULLY_CONNECTED", 300.0, 0.3) | {"p50": 295.0},
        ],
    }
    if ab:
        control = metric_record([v / 1.2 for v in values])
        fields |= {
            "comparison": "ab",
            "extra": {"ab": {"control": [control]}},
            "verdicts": [
                verdict_dict("NET latency", "regressed", 1.2, low=1.18, high=1.22),
            ],
        }
    load = metric_record([3200.0], metric="load", unit="us")  # a cold start, as runners give
    item: ItemRecord = item_record(ITEM, metric_record(values), load, **fields)
    commit_id = f"{number:02d}" + "c" * 38
    commit: CommitDict = {"id": commit_id, "branch": "main", "time": None, "dirty": False}
    created = f"2026-11-{number + 1:02d}T10:00:00+00:00"
    return run_file(item, id=f"run{number:02d}", created=created, commit=commit)


@pytest.fixture
def client(store: str) -> Iterator[TestClient]:
    location = history.location(store)
    for number in range(12):  # a 20% step after run 6, and an A/B run last
        history.append(location, a_run(number, 10.0 if number < 6 else 12.0, ab=number == 11))
    with TestClient(create_app(location, TOKEN)) as test_client:
        yield test_client


def test_the_pages_show_runs_trends_comparisons_and_ab(client: TestClient) -> None:
    listing = client.get("/runs")
    assert listing.status_code == 200
    assert listing.text.index("run11") < listing.text.index("run00")  # newest first
    assert "built-in method" not in listing.text  # a dict's items() method, not its count
    assert '<td class="n">1</td>' in listing.text
    assert '<td class="names">conv[x]</td>' in listing.text  # the item, by model and identifier
    assert "default-src 'self'; script-src 'self'" in listing.headers["content-security-policy"]
    filtered = client.get("/runs", params={"commit": "03", "model": "co*"}).text
    assert "run03" in filtered and "run04" not in filtered
    assert "run0" not in client.get("/runs", params={"framework": "onnx"}).text

    page = client.get("/runs/run05")
    assert page.status_code == 200 and "Pixel 7" in page.text and "10.00 ms" in page.text
    assert '<td class="n">3,200 us</td>' in page.text  # the load column
    charts = json.loads(
        page.text.split('<script type="application/json" id="charts">')[1].split("</script>")[0]
    )
    assert charts["ops-0"]["data"][0]["y"] == ["fc0 (FULLY_CONNECTED)", "conv0 (CONV_2D)"]

    trend = client.get("/trend", params={"item": ITEM, "metric": "NET latency"})
    assert trend.status_code == 200
    assert "Change points" in trend.text and "+20.0%" in trend.text  # the step from run 6
    assert "05cccccccc" in trend.text and "06cccccccc" in trend.text  # the commits around it

    compare = client.get("/compare", params={"a": "run04", "b": "07"})  # a run id, a commit
    assert compare.status_code == 200
    row = compare.text.split("<td><code>lab.json::conv[x-pixel]</code></td>")[1]
    assert "+20.0%" in row and "regressed" in row.split("</tr>")[0]
    typo = client.get("/compare", params={"min_effect": "5%"})
    assert typo.status_code == 404 and "min_effect=&#39;5%&#39; in the address" in typo.text
    same = client.get("/compare", params={"a": "run07", "b": "run08"}).text
    assert "unchanged" in same.split("<tbody>")[1]
    last_two = client.get("/compare").text  # no runs named: the newest against the one before
    named = last_two.split('<p class="meta">control')[1]
    assert named.index('href="/runs/run10"') < named.index('href="/runs/run11"')

    ab = client.get("/runs/run11/ab", params={"item": ITEM})
    assert ab.status_code == 200 and "+20.0%" in ab.text
    assert client.get("/runs/run10/ab", params={"item": ITEM}).status_code == 404
    assert client.get("/runs/nope").status_code == 404


def test_the_api_reads_runs_and_uploads_need_the_token(client: TestClient) -> None:
    assert [row["run"] for row in client.get("/api/runs").json()][:2] == ["run11", "run10"]
    assert client.get("/api/runs/run03").json()["items"][0]["nodeid"] == ITEM
    new = a_run(20, 11.0)
    new["id"] = "uploaded"
    body = json.dumps(new)
    assert client.post("/api/runs", content=body).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert client.post("/api/runs", content=body, headers=wrong).status_code == 401
    right = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/api/runs", content=body, headers=right).status_code == 201
    again = client.post("/api/runs", content=body, headers=right)
    assert again.status_code == 200 and again.json() == {"id": "uploaded", "added": False}
    broken = client.post("/api/runs", content=b'{"format": "x"}', headers=right)
    assert broken.status_code == 400 and "not a pytest-aibench run file" in broken.text
    assert client.post("/api/runs", content=b"{", headers=right).status_code == 400
    assert client.get("/runs/uploaded").status_code == 200


def test_the_compare_page_and_aibench_compare_apply_one_rule_to_a_changed_model(
    pytester: pytest.Pytester,
) -> None:
    """Two real runs of one node id whose model file changed (and is four times the work, so
    that a first run's noise, often +-40% on this 30 us model, cannot hide it): not judged by
    either, both saying why; with force, judged alike by both."""
    pytest.importorskip("onnxruntime")
    from .test_inprocess import ab_onnx_project, chain_model

    ab_onnx_project(pytester, 20, 20)
    run = ["--aibench-spec=chain.json", "--aibench-min-effect=20%"]
    pytester.runpytest(*run, "--aibench-json=control.json").assert_outcomes(passed=1)
    chain_model(pytester.path / "models/chain.onnx", 80)
    plain = pytester.runpytest(*run, "--aibench-compare=control.json", "--aibench-json=b.json")
    plain.assert_outcomes(passed=1)
    plain.stdout.fnmatch_lines(["aibench: 1 items whose inputs or model files changed (*"])
    forced = pytester.runpytest(
        *run, "--aibench-compare=control.json", "--aibench-compare-force", "--aibench-json=f.json"
    )
    forced.assert_outcomes(failed=1)
    forced.stdout.fnmatch_lines(["aibench: 1 items judged although their inputs or model files*"])

    location = pytester.path / "h.sqlite"
    for name in ("control.json", "f.json"):
        history.append(location, json.loads((pytester.path / name).read_text()))
    a, b = (json.loads((pytester.path / n).read_text())["id"] for n in ("control.json", "f.json"))
    with TestClient(create_app(location)) as dashboard:
        page = dashboard.get("/compare", params={"a": a, "b": b, "min_effect": "20"}).text
        judged = dashboard.get(
            "/compare", params={"a": a, "b": b, "min_effect": "20", "force": "1"}
        ).text
    row = page.split("<tbody>")[1].split("</tr>")[0]
    assert "not judged" in row and "its model files changed" in row
    forced_row = judged.split("<tbody>")[1].split("</tr>")[0]
    verdict = json.loads((pytester.path / "f.json").read_text())["items"][0]["verdicts"][0]
    assert verdict["status"] == "regressed" and "regressed" in forced_row
    assert "judged although its model files changed" in forced_row


def test_read_only_without_a_token_and_spec_text_is_escaped(tmp_path: Path) -> None:
    location = tmp_path / "h.sqlite"
    hostile = a_run(1, 5.0)
    hostile["items"][0]["nodeid"] = 'x.json::x[<script>alert("x")</script>]'
    history.append(location, hostile)
    with TestClient(create_app(location)) as read_only:
        assert read_only.post("/api/runs", content=b"{}").status_code == 405
        page = read_only.get("/runs/run01").text
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page


# -- the bar: separate processes, one PostgreSQL store, the real server, Chromium -------------

needs_browser = pytest.mark.skipif(
    find_browser() is None and not os.environ.get("CI"),
    reason="no Chromium here (CI installs Debian's chromium)",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pytest_run(folder: Path, store: str, *options: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--aibench-spec=specs"]
    command += ["--aibench-ops=5", f"--aibench-history={store}", *options]
    return subprocess.Popen(
        command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@contextmanager
def served(store: str, token_file: Path) -> Iterator[str]:
    """``aibench serve`` as a user starts it; yields its base URL."""
    port = _free_port()
    command = [sys.executable, "-m", "pytest_aibench", "serve", "--history", store]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--token-file", str(token_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/api/runs", timeout=5).close()
                break
            except OSError:
                assert server.poll() is None, server.communicate()[0]
                assert time.monotonic() < deadline, "aibench serve did not answer"
                time.sleep(0.2)
        yield base
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)


# charts whose traces plotly.js drew, and whether every chart of the page is one
CHARTS_DRAWN = (
    "[...document.querySelectorAll('[data-chart]')]"
    ".filter(chart => chart.querySelector('svg.main-svg .trace')).length"
)
CHART_SLOTS = "document.querySelectorAll('[data-chart]').length"
EVERY_CHART_DRAWN = f"{CHARTS_DRAWN} == {CHART_SLOTS}"


@needs_browser
def test_runs_from_separate_processes_into_postgresql_shown_in_chromium(
    tmp_path: Path, postgresql_url: str
) -> None:
    folder = tmp_path / "project"
    demo_project(folder)  # the ONNX model (operators) and a program of two sizes
    fast, slower = folder / "fast.py", folder / "slower.py"
    jobs = [_pytest_run(folder, postgresql_url, f"--aibench-program={fast}") for _ in range(2)]
    outputs = [job.communicate(timeout=600)[0] for job in jobs]  # at once, as two CI jobs
    assert [job.returncode for job in jobs] == [0, 0], outputs
    ab = _pytest_run(
        folder,
        postgresql_url,
        f"--aibench-program={slower}",
        f"--aibench-ab-control={fast}",
        "--aibench-ab-blocks=4",
        "--aibench-ab-min-effect=5%",
    )
    ab.communicate(timeout=600)
    with history.connect(postgresql_url) as db:
        runs = [row[1] for row in history.run_rows(db, history.Filters())]
    assert len(runs) == 3
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    large = quote("specs/sizes.json::sizes[large-host]")
    with served(postgresql_url, token_file) as base:
        pages = [
            f"{base}/runs",
            f"{base}/runs/{runs[2]}",  # the A/B run: verdicts and operators
            f"{base}/trend?item={large}&metric=NET%20latency",
            f"{base}/compare?a={runs[0]}&b={runs[1]}",
            f"{base}/runs/{runs[2]}/ab?item={large}",
        ]
        expressions = {"charts": CHARTS_DRAWN, "slots": CHART_SLOTS}
        checks = check_pages(pages, expressions=expressions, ready=EVERY_CHART_DRAWN)
    for page, check in zip(pages, checks, strict=True):
        assert check.problems == [], page
        assert check.values["charts"] == check.values["slots"], page  # every chart drawn
    listing, run_page, trend, compare, ab_page = checks
    assert all(run[:12] in listing.text for run in runs)  # both jobs' runs, and the A/B one
    assert listing.text.count("sizes[large], sizes[small]") == 3  # what each run measured
    assert run_page.values["charts"] >= 4  # top operators of the ONNX items
    assert trend.values["charts"] == 1  # runs of a folder without git: by the time each ran
    assert "3 runs, by the time each ran (these runs name no commit)" in trend.text
    assert "unchanged" in compare.text
    # both sides' samples of NET latency and of NET peak_memory (GNU time's, per block)
    assert ab_page.values["charts"] == 2 and "regressed" in ab_page.text
    assert "NET peak_memory: samples of each side" in ab_page.text
    if os.environ.get("AIBENCH_UPDATE_SCREENSHOT"):  # the picture in the README
        SCREENSHOT.write_bytes(run_page.screenshot)


def test_serve_refuses_a_store_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_aibench.cli import main as aibench

    missing = tmp_path / "none.sqlite"
    assert aibench(["serve", "--history", str(missing)]) == 1
    assert f"no history database at {missing}" in capsys.readouterr().err
