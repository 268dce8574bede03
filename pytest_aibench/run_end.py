"""The run's end, in the xdist controller (or the only process): the decisions that need every
item (the false discovery rate over the run's verdicts, the agreement across frameworks), then
every output of the run written or sent (reporting/publish.py)."""

from __future__ import annotations

import pytest

from .session import RunState, is_worker


class RunEnd:
    def __init__(self, run: RunState) -> None:
        self.run = run

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        run = self.run
        if is_worker(run.config):
            return
        if run.settings.fdr and run.control is not None:
            self._deferred_regressions(session)
        self._agreement()
        measured = any(item["metrics"] for item in run.results.values())
        if measured or run.settings.wants_outputs:
            self._publish(session)

    def _deferred_regressions(self, session: pytest.Session) -> None:
        """With --aibench-fdr, regressions stand only after Benjamini-Hochberg over the run."""
        from .verdicts.fdr import adjust_for_many

        items = self.run.results.values()
        verdicts = [verdict for item in items for verdict in item.get("verdicts", [])]
        regressed = adjust_for_many(verdicts, self.run.settings.alpha)
        if regressed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _agreement(self) -> None:
        """--aibench-reference, or a spec's reference: the frameworks' outputs compared."""
        settings, items = self.run.settings, self.run.results.values()
        named = any("reference" in (item["case"] or {}) for item in items)
        if not (settings.reference or named):
            return
        from . import kept_outputs
        from .verdicts.agreement import agree
        from .verdicts.rules import Tolerance

        tolerance = settings.error_tolerance or Tolerance()
        try:
            self.run.agreement = agree(items, settings.reference, tolerance, kept_outputs.read)
        finally:
            kept_outputs.discard(items)

    def _publish(self, session: pytest.Session) -> None:
        from . import __version__
        from .devices.host import cpu_model
        from .reporting.provenance import commit_info, machine_info
        from .reporting.publish import publish, publish_partial
        from .runfile import build_run

        run = self.run
        built = build_run(
            run.results.values(),
            machine=machine_info(cpu_model()),
            commit=commit_info(run.config.rootpath),
            plugin={"name": "pytest-aibench", "version": __version__, "pytest": pytest.__version__},
            build=run.settings.build_info,
        )
        if session.exitstatus == pytest.ExitCode.INTERRUPTED:
            run.published = publish_partial(built, run.storage)
            return
        run.published = publish(
            built,
            run.settings,
            storage=run.storage,
            control_items=run.control.items.values() if run.control else (),
        )
        if run.published.errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR  # an output path that is unusable
