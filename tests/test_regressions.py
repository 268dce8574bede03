"""The lab at a glance: regressions that stand, series by series (pure), over a history of
several models and devices with planted regressions (SQLite and a real PostgreSQL), from the
command line with its exit code, triaged, and on the dashboard's front page in Chromium."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_aibench.store import history
from pytest_aibench.store.regressions import read_lab
from pytest_aibench.verdicts.regressions import read_series

from . import lab_history
from .chromium import check_pages
from .lab_history import BROKEN, PLANTED, TAKEN_BACK, commit_id


def Run(value: float, status: str | None = None, *verdict: float) -> history.SeriesPoint:
    """A run of a series: its value, and its own verdict (status, ratio, low, high)."""
    ratio, low, high = verdict or (None, None, None)
    return history.SeriesPoint(
        "run", "t", None, None, None, value, status=status, ratio=ratio, low=low, high=high
    )


def runs(*values: float) -> list[history.SeriesPoint]:
    return [Run(value) for value in values]


# what a person reads in each alert's row
ALERT_ROWS = "JSON.stringify([...document.querySelectorAll('tr.alert')].map(row => row.innerText))"
TOKEN = "a-token-for-the-lab-tests"
STEP_WITH_A_WILD_RUN = (1.000, 1.001, 0.999, 1.000, 0.999, 1.103, 1.100, 1.096, 1.104, 1.581, 1.095)
FLAT = (1.00, 1.01, 0.99, 1.00, 1.01, 0.99, 1.00, 1.01, 0.99, 1.00)


def test_a_step_that_stands_is_a_regression_and_one_taken_back_is_not() -> None:
    found = read_series(runs(*STEP_WITH_A_WILD_RUN))
    assert [(r.index, round(r.ratio, 2), r.found_by) for r in found.regressions] == [
        (5, 1.10, "change point")
    ]
    assert found.state == "regressed"
    flat = read_series(runs(*FLAT))
    assert flat.regressions == [] and flat.state == "unchanged"
    taken_back = read_series(runs(*FLAT[:5], *(v * 1.1 for v in FLAT[:5]), *FLAT[:5]))
    assert taken_back.regressions == [] and taken_back.state == "improved"
    faster = read_series(runs(*FLAT[:5], *(v * 0.9 for v in FLAT[:5])))
    assert faster.regressions == [] and faster.state == "improved"


def test_which_way_is_worse_follows_the_metric() -> None:
    slower_decode = runs(*(v * 1000 for v in FLAT[:5]), *(v * 900 for v in FLAT[:5]))
    assert read_series(slower_decode, higher_is_better=True).state == "regressed"
    assert read_series(slower_decode, higher_is_better=False).state == "improved"


def test_the_latest_runs_own_verdict_counts_where_no_change_point_can_yet() -> None:
    series = [*runs(*FLAT), Run(1.08, "regressed", 1.08, 1.05, 1.11)]
    (regression,) = read_series(series).regressions
    assert (regression.index, regression.ratio, regression.low, regression.found_by) == (
        10,
        1.08,
        1.05,
        "the latest run's verdict",
    )
    undecided = [*runs(*FLAT), Run(1.0, "inconclusive")]
    assert read_series(undecided).state == "inconclusive"


# -- a lab's history in the store -------------------------------------------------------------


def _aibench(store: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_aibench", *args, "--db", store]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_planted_regressions_and_nothing_else_with_an_exit_code_and_triage(
    store: str,
) -> None:
    lab_history.fill(history.location(store))
    with history.connect(history.location(store)) as db:
        lab = read_lab(db, history.Filters())
    assert {(a.model, a.device, a.bad.commit) for a in lab.alerts} == {
        (p.model, p.device, commit_id(p.commit)) for p in PLANTED
    }
    for alert in lab.alerts:
        planted = next(p for p in PLANTED if p.model == alert.model)
        assert abs(alert.change - planted.change) < 0.03, alert
        assert alert.good is not None and alert.good.commit == commit_id(planted.commit - 1)
    assert len(lab.states) == len(lab_history.MODELS) * len(lab_history.DEVICES)
    assert {cell for cell, state in lab.states.items() if state == "regressed"} == {
        (p.model, p.device) for p in PLANTED
    }  # their newest items failed on their verdicts: regressed, not failed
    assert [cell for cell, state in lab.states.items() if state == "failed"] == [BROKEN]
    step, _ = TAKEN_BACK  # a step up and its fix: no regression stands
    assert lab.states[(step.model, step.device)] in ("improved", "unchanged")

    listed = _aibench(store, "regressions")
    assert listed.returncode == 1, listed.stderr  # new regressions: a nightly job fails
    assert "2 standing (2 open) in 15 series (300 runs)" in listed.stdout
    assert "1 failed, " in listed.stdout
    for planted in PLANTED:
        assert commit_id(planted.commit)[:10] in listed.stdout
    for alert in lab.alerts:
        decided = _aibench(store, "triage", alert.id, "acknowledged", "--by", "lead")
        assert decided.returncode == 0, decided.stderr
    assert _aibench(store, "regressions").returncode == 0  # none new
    assert _aibench(store, "regressions", "--fail-on", "open").returncode == 1
    assert "acknowledged by lead" in _aibench(store, "regressions").stdout
    typo = _aibench(store, "triage", "nope", "fixed", "--by", "lead")
    assert typo.returncode == 1 and "aibench regressions lists them" in typo.stderr


def test_a_flat_lab_has_no_regression(tmp_path: Path) -> None:
    store = str(tmp_path / "h.sqlite")
    lab_history.fill(history.location(store), plant=False)
    listed = _aibench(store, "regressions")
    assert listed.returncode == 0, listed.stdout
    assert "0 standing (0 open) in 15 series (300 runs)" in listed.stdout
    assert "15 unchanged" in listed.stdout


# -- the dashboard's front page ---------------------------------------------------------------


def test_the_front_page_lists_them_and_a_token_holder_triages_them(tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from pytest_aibench.dashboard.app import create_app

    location = history.location(str(tmp_path / "h.sqlite"))
    lab_history.fill(location)
    with TestClient(create_app(location, TOKEN)) as client:
        page = client.get("/").text
        alerts = re.findall(r'<tr id="alert-(\w+)" class="alert">', page)
        assert len(alerts) == 2
        for planted in PLANTED:
            assert commit_id(planted.commit)[:10] in page
        assert page.count('<td class="state regressed">') == 2
        api = client.get("/api/regressions").json()
        assert sorted(alert["id"] for alert in api["alerts"]) == sorted(alerts)
        assert {alert["bad"] for alert in api["alerts"]} == {commit_id(p.commit) for p in PLANTED}
        assert len(api["states"]) == 15
        form = {"state": "won't fix", "who": "lead", "token": "wrong"}
        refused = client.post(f"/alerts/{alerts[0]}", data=form, follow_redirects=False)
        assert refused.status_code == 401
        form["token"] = TOKEN
        done = client.post(f"/alerts/{alerts[0]}", data=form, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == f"/#alert-{alerts[0]}"
        unknown = client.post("/alerts/nope", data=form, follow_redirects=False)
        assert unknown.status_code == 400 and "aibench regressions lists them" in unknown.text
        after = client.get("/").text.split(f'id="alert-{alerts[0]}"')[1].split("</tr>")[0]
        assert "won&#39;t fix" in after and "lead" in after
    with TestClient(create_app(location, None)) as read_only:
        assert '<form class="triage"' not in read_only.get("/").text
        form = {"state": "fixed", "who": "x", "token": ""}
        assert read_only.post(f"/alerts/{alerts[1]}", data=form).status_code == 401


needs_browser = pytest.mark.skipif(
    __import__("shutil").which("chromium") is None and not os.environ.get("CI"),
    reason="no Chromium here (CI installs Debian's chromium)",
)


@needs_browser
def test_the_regressions_page_over_postgresql_in_chromium_names_each_planted_one(
    tmp_path: Path, postgresql_url: str
) -> None:
    from .test_dashboard import served

    lab_history.fill(history.location(postgresql_url))
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    with served(postgresql_url, token_file) as base:
        (front,) = check_pages([f"{base}/"], expressions={"rows": ALERT_ROWS})
    assert front.problems == []
    rows = json.loads(front.values["rows"])
    assert len(rows) == len(PLANTED), rows
    for planted in PLANTED:
        (row,) = [line for line in rows if planted.model in line]
        assert planted.device in row and commit_id(planted.commit)[:10] in row
        size = float(re.search(r"([+-]\d+\.\d)%", row).group(1))  # type: ignore[union-attr]
        assert abs(size - 100 * planted.change) < 3, row


# -- the README's lab, as pasted --------------------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(marker: str) -> str:
    """The code block after ``<!-- marker -->`` in the README."""
    text = README.read_text().split(f"<!-- {marker} -->\n", 1)[1]
    return text.split("```", 2)[1].split("\n", 1)[1]


def test_the_readmes_roles_let_ci_write_and_the_dashboard_only_read(postgresql_url: str) -> None:
    """The README's SQL, statement by statement as psql would run it, on a real server (its
    own for this test process: the roles are new there; its database "aibench" is the test
    server's own, so the README's gets another name)."""
    import psycopg

    base = postgresql_url.rpartition("/")[0]
    name = "lab_" + os.urandom(4).hex()
    sql = re.sub(r"\baibench\b(?!_)", name, readme_block("lab: roles"))
    admin = psycopg.connect(f"{base}/postgres", autocommit=True)
    pending = ""
    for line in sql.splitlines():
        if line.startswith("\\connect"):  # psql's own: the statements after it run there
            admin.close()
            admin = psycopg.connect(f"{base}/{line.split()[1]}", autocommit=True)
            continue
        pending += line + "\n"
        if pending.rstrip().endswith(";"):
            admin.execute(pending)
            pending = ""
    assert not pending.strip()
    host = base.split("@")[1]
    ci, viewer = (f"postgresql://{role}@{host}/{name}" for role in ("aibench_ci", "aibench_viewer"))
    with admin:
        lab_history.fill(history.location(ci))  # CI's first run makes the tables
        listed = _aibench(viewer, "regressions")
        assert listed.returncode == 1 and "2 standing (2 open)" in listed.stdout, listed.stderr
        another = lab_history.nightly_run(99, random.Random(1))
        with pytest.raises(Exception, match="permission denied"):
            history.append(history.location(viewer), another)
        alert = listed.stdout.splitlines()[1].split()[0]
        refused = _aibench(viewer, "triage", alert, "acknowledged", "--by", "lead")
        assert refused.returncode == 1 and "permission denied" in refused.stderr
        grant = "GRANT INSERT, DELETE ON triage TO aibench_viewer"  # as the README says, after
        assert f"`{grant};`" in README.read_text()
        admin.execute(grant)
        decided = _aibench(viewer, "triage", alert, "acknowledged", "--by", "lead")
        assert decided.returncode == 0, decided.stderr
