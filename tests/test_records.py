"""The typed records (records.py) describe the run file as it is written: every field a run
file holds is declared, every required field is there. A field added to the writer without
its type, or a type that promises a field nobody writes, fails here."""

from __future__ import annotations

import json
from typing import Any

from pytest import Pytester

from pytest_aibench import records

from .helpers import generic_spec, write_json, write_program


def undeclared_or_missing(data: dict[str, Any], record: Any) -> tuple[set[str], set[str]]:
    declared = record.__required_keys__ | record.__optional_keys__
    return set(data) - declared, record.__required_keys__ - set(data)


def test_a_run_file_has_exactly_the_fields_the_records_declare(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    for args in ([], ["--aibench-compare=base"]):  # the second run judges items: verdicts
        result = pytester.runpytest(
            "--aibench-spec=demo.json", "--aibench-json=run.json", "--aibench-save=base", *args
        )
        assert result.ret == 0
    run = json.loads((pytester.path / "run.json").read_text())
    item = run["items"][0]
    assert item["comparison"] == "compared" and item["verdicts"]
    checks = [
        (run, records.RunFile),
        (
            run["commit"] or {"id": "", "branch": None, "time": None, "dirty": False},
            records.CommitDict,
        ),
        (item, records.ItemRecord),
        (item["case"], records.CaseDict),
        (item["device"], records.DeviceDict),
        *((metric, records.MetricDict) for metric in item["metrics"]),
        *((operator, records.OperatorDict) for operator in item["operators"]),
        *((verdict, records.VerdictDict) for verdict in item["verdicts"]),
    ]
    wrong = {
        record.__name__: found
        for data, record in checks
        if any(found := undeclared_or_missing(data, record))
    }
    assert wrong == {}
    assert {verdict["status"] for verdict in item["verdicts"]} <= {
        records.REGRESSED,
        records.IMPROVED,
        records.UNCHANGED,
        records.INSUFFICIENT,
    }
