"""The history store: every run appended to SQLite, read back with the ``aibench`` command,
and safe when several pytest runs append at once."""

import csv
import io
import json
import multiprocessing
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pytest import CaptureFixture, Pytester

from pytest_aibench.cli import main as aibench
from pytest_aibench.records import CaseDict, CommitDict, DeviceDict, RunFile
from pytest_aibench.store import history

from .helpers import generic_spec, item_record, metric_record, run_file, write_json, write_program


def a_run(
    uid: str,
    created: str,
    commit: str = "abc123",
    model: str = "mlp",
    device: str = "pixel",
    values: tuple[float, ...] = (1.0, 2.0, 3.0),
) -> RunFile:
    """A run of one measured item on an Android phone, and one that failed before measuring."""
    case: CaseDict = {
        "model": model,
        "identifier": "x",
        "index": 0,
        "framework": "generic",
        "format": "generic",
        "metric": "delay",
        "spec": f"{model}.json",
        "source": f"{model}.json",
    }
    phone: DeviceDict = {
        "kind": "android",
        "id": device + "-1",
        "name": device,
        "hash": "h",
        "abi": "arm64",
        "os": "14",
    }
    measured = item_record(
        f"{model}.json::{model}[x-{device}]", metric_record(values), case=case, device=phone
    )
    broken = item_record("broken", outcome="error")
    commit_info: CommitDict = {"id": commit, "branch": "main", "time": None, "dirty": False}
    return run_file(
        measured, broken, id=uid, created=created, commit=commit_info, machine={"node": "lab"}
    )


def cli(capsys: CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what came before
    code = aibench(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def rows_in(store: str | Path, table: str) -> int:
    with history.connect(history.location(str(store))) as db:
        return int(db.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one())


def test_runs_are_appended_once_and_read_back_with_their_samples(
    store: str, capsys: CaptureFixture[str]
) -> None:
    db = history.location(store)
    assert history.append(db, a_run("r1", "2026-11-01T10:00:00+00:00", values=(1.5, 2.25, 3.0)))
    assert not history.append(db, a_run("r1", "2026-11-01T10:00:00+00:00"))  # already there
    assert history.append(db, a_run("r2", "2026-11-02T10:00:00+00:00", commit="def456"))
    code, out, _ = cli(capsys, "history", "--db", store, "runs")
    assert code == 0
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["r1", "r2"]
    code, out, _ = cli(capsys, "history", "--db", store, "query", "--samples", "--csv", "-")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(row["run"], float(row["value"])) for row in rows] == [
        ("r1", 1.5),
        ("r1", 2.25),
        ("r1", 3.0),
        ("r2", 1.0),
        ("r2", 2.0),
        ("r2", 3.0),
    ]
    assert rows_in(store, "items") == 2  # the item without metrics is not stored
    original = a_run("r1", "2026-11-01T10:00:00+00:00", values=(1.5, 2.25, 3.0))["items"][0]
    with history.connect(db) as opened:
        stored = history.load_run(opened, "r1")["items"]
    assert stored == [original]  # read back as the run file had it


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--model", "mobile*"], ["r2"]),
        (["--device", "pixel"], ["r1", "r3"]),
        (["--since", "2026-11-02"], ["r2", "r3"]),
        (["--until", "2026-11-02"], ["r1", "r2"]),  # the whole day
        (["--commit", "def"], ["r3"]),
        (["--metric", "NET latency"], ["r1", "r2", "r3"]),
        (["--metric", "energy"], []),
    ],
)
def test_query_filters(
    store: str, capsys: CaptureFixture[str], option: list[str], expected: list[str]
) -> None:
    db = history.location(store)
    history.append(db, a_run("r1", "2026-11-01T10:00:00+00:00"))
    history.append(db, a_run("r2", "2026-11-02T23:59:00+00:00", model="mobilenet", device="iphone"))
    history.append(db, a_run("r3", "2026-11-03T08:00:00+00:00", commit="def456"))
    code, out, _ = cli(capsys, "history", "--db", store, "query", "--csv", "-", *option)
    assert code == 0
    assert [row["run"] for row in csv.DictReader(io.StringIO(out))] == expected


def test_a_stored_run_becomes_an_html_report_with_its_trends(
    tmp_path: Path, capsys: CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    db = tmp_path / "h.sqlite"
    for day in range(1, 4):
        history.append(
            db,
            a_run(f"r{day}", f"2026-11-0{day}T10:00:00+00:00", values=(day, day + 0.5, day + 1.0)),
        )
    code, out, _ = cli(capsys, "history", "--db", str(db), "report", str(tmp_path / "a.html"))
    assert code == 0 and "(run r3 of 2026-11-03T10:00:00+00:00)" in out
    page = (tmp_path / "a.html").read_text()
    assert "<h2>Trends" in page and "<td>3.50</td>" in page  # r3's p50
    code, _, _ = cli(
        capsys, "history", "--db", str(db), "report", str(tmp_path / "b.html"), "--run", "r1"
    )
    assert code == 0 and "<td>1.50</td>" in (tmp_path / "b.html").read_text()
    code, _, err = cli(capsys, "history", "--db", str(db), "report", "c.html", "--run", "r")
    assert code == 1 and "3 runs in the history store with an id starting 'r'" in err


def test_a_missing_database_is_an_error_that_says_where(
    tmp_path: Path, capsys: CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "history", "--db", str(tmp_path / "none.sqlite"), "runs")
    assert code == 1
    assert f"no history database at {tmp_path / 'none.sqlite'}" in err


def observer_project(pytester: Pytester, items: int = 2) -> None:
    write_program(pytester.path / "prog.py")
    tests = [
        {
            "identifier": f"t{i}",
            "metric": "delay",
            "iter": 3,
            "commands": ["{files.program} --iter {iter}"],
        }
        for i in range(items)
    ]
    write_json(pytester.path / "demo.json", generic_spec("demo", tests=tests))


def test_pytest_appends_each_run_and_import_skips_runs_already_there(
    pytester: Pytester, capsys: CaptureFixture[str]
) -> None:
    observer_project(pytester)
    for _ in range(2):
        result = pytester.runpytest("--aibench-spec=demo.json", "--aibench-json=run.json")
        result.assert_outcomes(passed=2)
    db = pytester.path / ".aibench" / "history.sqlite"
    result.stdout.fnmatch_lines([f"aibench: history: run * added to {db}"])
    code, out, _ = cli(
        capsys, "history", "--db", str(db), "query", "--csv", "-", "--metric", "NET latency"
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 4 and {row["p50"] for row in rows} == {"11.0"}
    code, out, _ = cli(capsys, "history", "--db", str(db), "import", "run.json")
    assert code == 0
    assert out.strip() == f"aibench: added 0 of 1 runs to {db}"  # the last run is in already


def test_history_off_and_a_store_that_cannot_be_written(
    pytester: Pytester, capsys: CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    observer_project(pytester, items=1)
    pytester.runpytest("--aibench-spec=demo.json", "--aibench-history=off").assert_outcomes(
        passed=1
    )
    assert not (pytester.path / ".aibench").exists()
    (pytester.path / "taken").mkdir()  # a folder where the database should be
    result = pytester.runpytest(
        "--aibench-spec=demo.json", "--aibench-history=taken", "--aibench-json=run.json"
    )
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "aibench: the run was not added to the history store taken (*): kept in "
            "*history-spool*.json; 'aibench history push --db taken' sends it"
        ]
    )
    run = json.loads((pytester.path / "run.json").read_text())
    assert run["items"]  # still written
    (spooled,) = (pytester.path / ".aibench" / "history-spool").iterdir()
    assert json.loads(spooled.read_text())["id"] == run["id"]
    # once the store can be written, the push sends the run and empties the spool
    (pytester.path / "taken").rmdir()
    monkeypatch.chdir(pytester.path)
    code, out, _ = cli(capsys, "history", "--db", "taken", "push")
    assert code == 0 and "pushed 1 runs to taken (0 were there already, 0 not sent)" in out
    assert not spooled.exists() and rows_in(pytester.path / "taken", "runs") == 1


def test_two_concurrent_xdist_runs_append_without_losing_a_record(pytester: Pytester) -> None:
    pytest.importorskip("xdist")
    observer_project(pytester, items=6)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "--aibench-spec=demo.json",
        "--aibench-history=shared.sqlite",
    ]
    runs = [
        subprocess.Popen(
            command, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    with sqlite3.connect(pytester.path / "shared.sqlite") as db:
        counts = [
            db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("runs", "items", "metrics", "samples")
        ]
    # 2 runs x 6 items x (NET latency, NET peak_memory, conv1 latency); 3 + 1 + 1 samples
    assert counts == [2, 12, 36, 60]


def _append_many(store: str, worker: int) -> None:
    db = history.location(store)
    for number in range(5):
        history.append(db, a_run(f"w{worker}-{number}", f"2026-11-0{worker + 1}T00:00:00+00:00"))
    history.append(db, a_run("everyone", "2026-11-01T00:00:00+00:00"))  # a race for one run


def test_eight_processes_appending_at_once_lose_nothing(store: str) -> None:
    db = store
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(db, n)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0] * 8
    assert rows_in(store, "runs") == 41  # the run they all appended is there once
    assert rows_in(store, "samples") == 123


def test_a_store_of_the_first_schema_is_upgraded_and_keeps_its_runs(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    history.append(db, a_run("old", "2026-11-01T10:00:00+00:00"))
    with sqlite3.connect(db) as connection:  # the store as version 1 wrote it
        connection.execute("ALTER TABLE runs DROP COLUMN build")
        connection.execute("DROP TABLE leases")
        connection.execute("DROP TABLE triage")
        connection.execute("PRAGMA user_version = 1")
    built = a_run("new", "2026-11-02T10:00:00+00:00")
    built["build"] = {
        "repo": "/fw",
        "id": "f" * 40,
        "time": "2026-11-02T09:00:00+00:00",
        "subject": "faster conv",
    }
    assert history.append(db, built)
    with history.connect(db) as connection:
        version = connection.exec_driver_sql("PRAGMA user_version").scalar_one()
        assert version == history.SCHEMA_VERSION
        assert "build" not in history.load_run(connection, "old")
        assert history.load_run(connection, "new")["build"] == built["build"]
        (points,) = history.series(connection, history.Filters()).values()
    # in commit order, the framework commit where the run has one
    assert [(p.run, p.commit) for p in points] == [("old", "abc123"), ("new", "f" * 40)]
    with history.connect(db) as connection:  # and beside the project's commit in a query
        rows = history.summaries(connection, history.Filters(metric="NET latency"))
    columns = [history.SUMMARY_COLUMNS.index(name) for name in ("commit", "framework commit")]
    assert [tuple(row[i] for i in columns) for row in rows] == [
        ("abc123", None),
        ("abc123", "f" * 40),
    ]
