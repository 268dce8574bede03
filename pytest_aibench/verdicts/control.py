"""The control run a run is judged against (``--aibench-compare``): stored run files, or the
history store's last runs, made one :class:`~.gate.ControlRun`. Unlike the rest of verdicts/,
this module reads: run files and the store. A control that cannot be loaded is an
:class:`~pytest_aibench.errors.AibenchError` naming the option, which pytest's side makes a
usage error (exit code 4) before anything runs."""

from __future__ import annotations

from pathlib import Path

from ..errors import AibenchError
from ..options import Settings
from ..records import RunFile
from ..runfile import find_runs, read_run
from ..store.location import exists, history_location, problem, shown
from .gate import ControlRun

HISTORY_CONTROL = "history"  # --aibench-compare=history


def control_paths(settings: Settings, storage: Path) -> list[Path]:
    """The run files --aibench-compare (and --aibench-compare-runs) name, oldest first."""
    selector = settings.compare
    if not selector or selector == HISTORY_CONTROL:
        return []
    try:
        return find_runs(storage, selector, settings.compare_runs)
    except ValueError as exc:
        raise AibenchError(f"--aibench-compare: {exc}") from None


def load_control(settings: Settings, storage: Path, paths: list[Path]) -> ControlRun | None:
    """The control run from ``paths`` (control_paths' choice), or from the history store."""
    if settings.compare == HISTORY_CONTROL:
        return _from_history(settings, storage)
    if not paths:
        return None
    try:
        runs = [read_run(path) for path in paths]
    except (OSError, ValueError) as exc:
        raise AibenchError(f"--aibench-compare: {exc}") from None
    earlier = len(paths) - 1
    name = paths[-1].name + (f" and {earlier} earlier run{'s' * (earlier > 1)}" if earlier else "")
    return _control_run(settings, name, runs)


def _from_history(settings: Settings, storage: Path) -> ControlRun:
    """``--aibench-compare=history``: the history store's last K runs (each item is judged
    against those of them that ran it on the same device model and model files)."""
    database = history_location(settings.history, storage)
    if database is None or not exists(database):
        where = shown(database) if database else "(--aibench-history=off)"
        raise AibenchError(f"--aibench-compare=history: no history store at {where}")
    from ..store import history  # noqa: PLC0415  (SQLAlchemy, for --aibench-compare=history)

    try:
        with history.connect(database, create=False) as db:
            runs = history.last_runs(db, settings.compare_runs)
    except Exception as exc:  # unreadable, unreachable, or holding no run
        raise AibenchError(f"--aibench-compare=history: {problem(exc)}") from None
    return _control_run(settings, f"the history store's last {len(runs)} run(s)", runs)


def _control_run(settings: Settings, name: str, runs: list[RunFile]) -> ControlRun:
    return ControlRun.of(
        name,
        runs,
        rules=settings.fail_on,
        min_effect=settings.min_effect,
        alpha=settings.alpha,
        force=settings.compare_force,
        defer_failures=settings.fdr,
    )
