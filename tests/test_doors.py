"""Every door a run file comes in by checks it against the typed records: a control run, an
upload, ``aibench history import`` and ``aibench history push`` (the remote reporter's spool:
tests/test_remote.py).
A bad file is said in one line naming it and the field, set aside where it was ours, and the
rest goes on."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pytest import CaptureFixture, Pytester

from pytest_aibench.cli import main as aibench
from pytest_aibench.runfile import check_run

from .helpers import generic_spec, item_record, metric_record, run_file, write_json, write_program


def good_run(uid: str) -> dict[str, Any]:
    run: dict[str, Any] = dict(run_file(item_record("a.json::a[x]", metric_record([1.0])), id=uid))
    return run


POISONS = {
    "a build that is text": ("build", "abc", "build: input should be a valid dictionary"),
    "a device that is text": (
        "items",
        [item_record("a.json::a[x]", device="pixel")],
        "items[0].device: input should be a valid dictionary",
    ),
    "a boolean sample": (
        "items",
        [item_record("a.json::a[x]", metric_record([1.0]) | {"values": [True]})],
        "items[0].metrics[0].values[0]: input should be a valid number",
    ),
    "a nodeid that is a number": (
        "items",
        [item_record("a.json::a[x]") | {"nodeid": 7}],
        "items[0].nodeid: input should be a valid string",
    ),
}


@pytest.mark.parametrize("poison", POISONS)
def test_a_run_file_with_a_field_of_another_type_is_refused_naming_it(poison: str) -> None:
    field, value, said = POISONS[poison]
    run = good_run("r1") | {field: value}
    with pytest.raises(ValueError) as refused:
        check_run(run, "bad.json")
    assert str(refused.value).startswith(f"bad.json: {said}")


def test_history_import_adds_the_good_files_and_names_the_bad(
    tmp_path: Path, capsys: CaptureFixture[str]
) -> None:
    good = write_json(tmp_path / "good.json", good_run("good"))
    poisoned = write_json(tmp_path / "poisoned.json", good_run("bad") | {"build": "abc"})
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2")
    db = tmp_path / "h.sqlite"
    code = aibench(["history", "--db", str(db), "import", str(poisoned), str(junk), str(good)])
    out = capsys.readouterr()
    assert code == 1
    assert out.out.strip() == f"aibench: added 1 of 3 runs to {db}"
    assert f"aibench: not imported: {poisoned}: build: input should be a valid dictionary" in (
        out.err
    )
    assert f"aibench: not imported: {junk} is not a JSON file" in out.err
    assert poisoned.exists() and junk.exists()  # the user's files stay as they were
    assert aibench(["history", "--db", str(db), "report", str(tmp_path / "r.html")]) == 0


def test_history_push_sets_a_bad_spool_file_aside_and_sends_the_rest(
    tmp_path: Path, capsys: CaptureFixture[str]
) -> None:
    spool = tmp_path / "spool"
    write_json(spool / "a.json", good_run("a"))
    write_json(spool / "b.json", [1, 2])
    write_json(spool / "c.json", good_run("c") | {"build": "abc"})
    db = tmp_path / "h.sqlite"
    code = aibench(["history", "--db", str(db), "push", "--spool", str(spool)])
    out = capsys.readouterr()
    assert code == 1
    assert "pushed 1 runs" in out.out
    assert f"{spool / 'b.json'} cannot be sent ({spool / 'b.json'} is not a pytest-aibench" in (
        out.err
    )
    assert f"set aside as {spool / 'set-aside' / 'c.json'}" in out.err
    assert sorted(p.name for p in spool.iterdir()) == ["set-aside"]
    assert sorted(p.name for p in (spool / "set-aside").iterdir()) == ["b.json", "c.json"]


def test_a_control_run_with_a_wrong_type_is_a_usage_error_naming_the_field(
    pytester: Pytester,
) -> None:
    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "demo.json", generic_spec())
    control = good_run("c") | {"items": [item_record("x", device="pixel")]}
    write_json(pytester.path / "control.json", control)
    result = pytester.runpytest("--aibench-spec=demo.json", "--aibench-compare=control.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--aibench-compare: *control.json: items[[]0[]].device: input should be a valid dict*"]
    )


def test_a_poisoned_upload_is_refused_with_its_field(tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from pytest_aibench.dashboard.app import create_app
    from pytest_aibench.store import history

    location = history.location(str(tmp_path / "h.sqlite"))
    history.append(location, check_run(good_run("first"), "first"))
    headers = {"Authorization": "Bearer t"}
    with TestClient(create_app(location, "t")) as client:
        for poison, (field, value, said) in POISONS.items():
            body = json.dumps(good_run(poison) | {field: value})
            answer = client.post("/api/runs", content=body, headers=headers)
            assert answer.status_code == 400, poison
            assert said in answer.json()["error"]
        assert client.get("/").status_code == 200
        assert client.get("/runs").status_code == 200
        assert client.get("/runs/first").status_code == 200


def test_an_upload_over_the_stated_bound_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from pytest_aibench.dashboard.app import MAX_UPLOAD_BYTES, create_app
    from pytest_aibench.store import history

    location = history.location(str(tmp_path / "h.sqlite"))
    history.append(location, check_run(good_run("first"), "first"))
    with TestClient(create_app(location, "t")) as client:
        answer = client.post(
            "/api/runs",
            content=b" " * (MAX_UPLOAD_BYTES + 1),
            headers={"Authorization": "Bearer t"},
        )
    assert answer.status_code == 413 and "larger than 16 MiB" in answer.json()["error"]


def test_a_run_stored_before_the_doors_checked_it_is_no_500(tmp_path: Path) -> None:
    """A run that an earlier version let in with a text ``build``: its pages say what is wrong
    with it and the others still work."""
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from pytest_aibench.dashboard.app import create_app
    from pytest_aibench.store import history

    location = history.location(str(tmp_path / "h.sqlite"))
    for uid in ("good", "poisoned"):
        history.append(location, check_run(good_run(uid), uid))
    with sqlite3.connect(tmp_path / "h.sqlite") as db:
        db.execute("UPDATE runs SET build = '\"abc\"' WHERE uid = 'poisoned'")
    with TestClient(create_app(location)) as client:
        page = client.get("/runs/poisoned")
        assert page.status_code == 404
        assert "the stored run poisoned: build: input should be a valid dictionary" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        trend = client.get("/trend", params={"item": "a.json::a[x]", "metric": "NET latency"})
        assert trend.status_code == 200
        assert client.get("/").status_code == 200 and client.get("/runs/good").status_code == 200
