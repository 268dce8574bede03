"""Where a finished run goes: the run file and its exports, FAI-PEP's reporter outputs, the
history store, the remote reporter and the HTML report. Called once, by the controller."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import history
from .faipep_reporters import simple_screen_lines, write_local_tree, write_simple_local
from .remote import Endpoint, Reporter
from .settings import Settings
from .store import save_run, to_github_benchmark, to_pytest_benchmark, write_json

_OFF = ("off", "no", "none", "false", "0")


@dataclass
class Published:
    written: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def wants_run_files(settings: Settings) -> bool:
    """Whether the user asked for an output even if nothing was measured."""
    return bool(settings.json or settings.save or settings.autosave or settings.benchmark_json
                or settings.github_json or settings.local_reporter
                or settings.simple_local_reporter or settings.simple_screen_reporter
                or settings.html)


def history_path(settings: Settings, storage: Path) -> Path | None:
    if settings.history and settings.history.strip().lower() in _OFF:
        return None
    return Path(settings.history).expanduser() if settings.history else \
        storage / "history.sqlite"


def publish(run: Mapping[str, Any], settings: Settings, *, storage: Path,
            control_run: Mapping[str, Any] | None) -> Published:
    measured = any(item.get("metrics") for item in run["items"])
    done = Published(written=write_files(run, settings, storage))
    database = history_path(settings, storage)
    if measured and database:
        done.lines.append(_append_history(database, run))
    if measured and settings.remote_reporter:
        reporter = Reporter(Endpoint.parse(settings.remote_reporter),
                            settings.remote_access_token, storage / "spool",
                            settings.remote_timeout)
        done.lines += reporter.report(run)
    if settings.html:
        _write_html(settings.html, settings.ops, run, control_run, database)
        done.written.append(settings.html)
    if settings.simple_screen_reporter:
        done.lines += simple_screen_lines(run)
    return done


def write_files(run: Mapping[str, Any], settings: Settings, storage: Path) -> list[Path]:
    written = []
    if settings.json:
        write_json(settings.json, run)
        written.append(settings.json)
    if settings.save or settings.autosave:
        written.append(save_run(storage, run, settings.save))
    if settings.benchmark_json:
        write_json(settings.benchmark_json, to_pytest_benchmark(run))
        written.append(settings.benchmark_json)
    if settings.github_json:
        write_json(settings.github_json, to_github_benchmark(run))
        written.append(settings.github_json)
    if settings.local_reporter:
        written += write_local_tree(settings.local_reporter, run)
    if settings.simple_local_reporter:
        written += write_simple_local(settings.simple_local_reporter, run)
    return written


def _append_history(database: Path, run: Mapping[str, Any]) -> str:
    """A store that cannot be written costs the history entry, never the run's other outputs."""
    try:
        history.append(database, run)
    except (OSError, ValueError, sqlite3.Error) as exc:
        return f"aibench: the run was not added to the history store {database}: {exc}"
    return f"aibench: history: run {history.run_uid(run)[:12]} added to {database}"


def _write_html(path: Path, top_operators: int, run: Mapping[str, Any],
                control_run: Mapping[str, Any] | None, database: Path | None) -> None:
    from . import html_report

    trends: dict[str, list[history.TrendPoint]] = {}
    if database and database.is_file():
        with history.connect(database) as db:
            trends = history.trends(db, [item for item in run["items"] if item.get("metrics")])
    html_report.write(path, run, control_run=control_run, trends=trends,
                      top_operators=top_operators)
