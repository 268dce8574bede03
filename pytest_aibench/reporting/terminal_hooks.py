"""What pytest prints of a run: with -v, what each item measured after PASSED or FAILED, and
the tables and lines at the end (terminal.py renders them). Hooks of their own plugin object,
marked with pluggy's marker for pytest's hooks, so that reporting/ never imports pytest. Part
of the pytest-facing layer: it loads terminal.py only once there is something to print."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pluggy

from ..records import INCONCLUSIVE, REPORT_ATTRIBUTE

if TYPE_CHECKING:
    from ..records import Payload
    from ..session import RunState

hookimpl = pluggy.HookimplMarker("pytest")


class TerminalHooks:
    def __init__(self, run: RunState, worker: bool) -> None:
        self.run = run
        self.worker = worker  # an xdist worker prints nothing: its controller does

    @hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: Any, config: Any
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        """An item A/B left undecided is counted apart: ``1 inconclusive`` in pytest's last
        line, ``?`` in its progress. With -v, what was measured and where, after PASSED or
        FAILED (xdist too: the controller makes this line from the worker's report)."""
        payload = cast("Payload | None", getattr(report, REPORT_ATTRIBUTE, None))
        if report.when != "call" or not payload or hasattr(report, "wasxfail") or report.skipped:
            return None
        from .terminal import headline, undecided

        detail = headline(payload) if config.get_verbosity() >= 1 else ""
        shown = f" [{detail}]" if detail else ""
        if report.passed and undecided(payload):
            return INCONCLUSIVE, "?", (f"{INCONCLUSIVE.upper()}{shown}", {"yellow": True})
        if not detail:
            return None
        word, letter = ("PASSED", ".") if report.passed else ("FAILED", "F")
        colour = "green" if report.passed else "red"
        return report.outcome, letter, (f"{word}{shown}", {colour: True})

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        run = self.run
        if self.worker or not (run.results or run.published):
            return
        from .terminal import write_agreement, write_summary

        items = list(run.results.values())
        write_summary(terminalreporter, items, run.control, run.settings.ops)
        if run.agreement:
            write_agreement(terminalreporter, run.agreement)
        if run.published is None:
            return
        for line in run.published.lines:
            terminalreporter.write_line(line)
        for line in run.published.errors:
            terminalreporter.write_line(line, red=True, bold=True)
        for path in run.published.written:
            terminalreporter.write_line(f"aibench: wrote {path}")
