"""The item recorder: the one place that turns what an item recorded into its outcome. Runners,
the A/B loop and the golden checks only record (metrics, verdicts, failures); here, as each
item's report is made, its record is built, judged against the control run where there is one,
and the item fails for a regression, a golden mismatch, an A/B verdict or a measurement that is
not a finite number. The record then rides on the report to the xdist controller, where
:meth:`ItemRecorder.pytest_runtest_logreport` keeps it for the run file."""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from .records import REPORT_ATTRIBUTE
from .session import RunState
from .stash import CASE, DEVICE, DEVICE_STATE, MODEL_MD5, RECORDER

if TYPE_CHECKING:
    from .options import Settings
    from .recorder import Recorder
    from .records import CaseDict, Payload
    from .spec.model import Case


def new_recorder(settings: Settings, item: pytest.Item) -> Recorder:
    """The ``aibench`` fixture's recorder, counted as its mark and the options say, kept with
    the item for its record."""
    from .recorder import Recorder

    mark = item.get_closest_marker("aibench")
    given = mark.kwargs if mark else {}
    iterations, warmup = settings.fixture_counts(given.get("iterations"), given.get("warmup"))
    recorder = Recorder(int(iterations), int(warmup))
    item.stash[RECORDER] = recorder
    return recorder


class ItemRecorder:
    def __init__(self, run: RunState) -> None:
        self.run = run

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when == "call" or (call.when == "setup" and report.outcome != "passed"):
            try:
                self._record(item, report, call.when)
            except Exception as exc:  # a bug of ours costs this item, never the session
                why = f"{type(exc).__name__}: {exc}"
                _fail(report, f"aibench: could not record this item's results: {why}")
        return report

    def _record(self, item: pytest.Item, report: pytest.TestReport, when: str) -> None:
        payload = self._payload(item)
        if payload is None:
            return
        recorder = item.stash.get(RECORDER, None)
        failures = list(recorder.failures) if recorder else []  # golden mismatches, A/B
        control = self.run.control
        if when == "call" and control is not None and "comparison" not in payload:
            judgement = control.judge(report.nodeid, payload)
            payload["comparison"] = judgement.state
            payload["verdicts"] = [verdict.to_dict() for verdict in judgement.verdicts]
            failures += [judgement.failure] if judgement.failure else []
        failures += _non_finite(payload)
        if failures:
            _fail(report, "\n".join(failures))
        setattr(report, REPORT_ATTRIBUTE, payload)

    def _payload(self, item: pytest.Item) -> Payload | None:
        from .atomic import finite
        from .metrics import DEFAULT_STATISTICS
        from .recorder import Recorder

        recorder, case = item.stash.get(RECORDER, None), item.stash.get(CASE, None)
        if case is None and (recorder is None or not recorder.records):
            return None
        statistics = (
            tuple(case.test.get("statistics", DEFAULT_STATISTICS)) if case else DEFAULT_STATISTICS
        )
        device = item.stash.get(DEVICE, None)
        root = self.run.config.rootpath
        payload: Payload = {
            **(recorder or Recorder(1, 0)).results(statistics),
            "case": describe(case, item.stash.get(MODEL_MD5, {}), root) if case else None,
            "device": device.to_dict() if device else None,
            "device_state": item.stash.get(DEVICE_STATE, {}),
        }
        # Plain JSON types only: xdist's serialiser refuses numpy scalars and str subclasses such
        # as torch's version string, and the run file is JSON anyway.
        # NaN and infinities become null here, once, so every output after this is valid JSON.
        return cast("Payload", json.loads(json.dumps(finite(payload), default=str)))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = cast("Payload | None", getattr(report, REPORT_ATTRIBUTE, None))
        if payload is None or report.when == "teardown":
            return
        outcome = (
            report.outcome if report.when == "call" else ("skipped" if report.skipped else "error")
        )
        self.run.results[report.nodeid] = {
            "nodeid": report.nodeid,
            "outcome": outcome,
            "duration": report.duration,
            **payload,
        }


def _fail(report: pytest.TestReport, message: str) -> None:
    """Fail a passing item with ``message``; an item that failed already keeps its own."""
    if report.passed:
        report.outcome = "failed"
        report.longrepr = message


def _non_finite(payload: Payload) -> list[str]:
    """A NaN or infinite measurement fails its item (its other samples are still kept)."""
    bad = [
        f"{metric['type']} {metric['metric']}: "
        + ", ".join(f"{count} {kind}" for kind, count in metric["non_finite"].items())
        for metric in payload.get("metrics", [])
        if metric.get("non_finite")
    ]
    if not bad:
        return []
    return [
        "aibench: measurements that are not finite numbers (kept out of the "
        "statistics, counted in the run file as non_finite): " + "; ".join(bad)
    ]


def describe(case: Case, model_md5: dict[str, str], root: Path) -> CaseDict:
    """The case as the run file records it."""
    described: CaseDict = {
        "model": case.name,
        "identifier": case.identifier,
        "index": case.index,
        "framework": case.framework,
        "format": case.format,
        "metric": case.metric,
        "spec": _relative(case.spec_path, root),
        "source": _relative(case.source, root),
        # the workload, which a comparison must find unchanged (verdicts.gate.what_changed)
        "inputs": {
            name: spec["shapes"][0] for name, spec in (case.test.get("inputs") or {}).items()
        },
        "model_md5": model_md5,
    }
    if case.reference:
        described["reference"] = case.reference
    if case.layout:
        described["layout"] = case.layout
    if case.match:
        described["match"] = case.match
    return described


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
