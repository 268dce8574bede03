"""Where a finished run goes: the run file and its exports, FAI-PEP's reporter outputs, the
history store, the remote reporter and the HTML report. Called once, by the controller."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..atomic import write_json
from ..options import Settings
from ..records import ItemRecord, RunFile
from .exports import to_github_benchmark, to_pytest_benchmark
from .faipep import simple_screen_lines, write_local_tree, write_simple_local
from .runfile import run_filename, save_run

_OFF = ("off", "no", "none", "false", "0")


@dataclass
class Published:
    written: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def history_path(settings: Settings, storage: Path) -> Path | None:
    if settings.history and settings.history.strip().lower() in _OFF:
        return None
    return Path(settings.history).expanduser() if settings.history else storage / "history.sqlite"


def publish(
    run: RunFile,
    settings: Settings,
    *,
    storage: Path,
    control_items: Iterable[ItemRecord] = (),
) -> Published:
    """Everything asked for. An output that cannot be written is an error line (and the
    session fails), never a lost run: the other outputs are still written."""
    measured = any(item.get("metrics") for item in run["items"])
    done = Published()
    database = history_path(settings, storage)
    if measured and database:  # first, so that the HTML report's trends include this run
        done.lines.append(_append_history(database, run))
    for option, write in _outputs(run, settings, storage, control_items, database).items():
        try:
            done.written += write()
        except Exception as exc:  # one output that fails never costs the others
            done.errors.append(f"aibench: {option}: could not write: {exc}")
    if measured and settings.remote_reporter:
        from .remote import Endpoint, Reporter  # urllib and ssl only when a run is posted

        reporter = Reporter(
            Endpoint.parse(settings.remote_reporter),
            settings.remote_access_token,
            storage / "spool",
            settings.remote_timeout,
        )
        done.lines += reporter.report(run)
    if settings.simple_screen_reporter:
        done.lines += simple_screen_lines(run)
    return done


def publish_partial(run: RunFile, storage: Path) -> Published:
    """An interrupted run: kept, marked partial, where no later run takes it for a control or a
    complete run; --aibench-json, saved runs, reports and the history are left as they were."""
    done = Published()
    path = storage / "partial" / run_filename(run)
    try:
        write_json(path, {**run, "partial": True})
    except OSError as exc:
        done.errors.append(f"aibench: the interrupted run could not be kept: {exc}")
        return done
    done.lines.append(
        f"aibench: the run was interrupted: its {len(run['items'])} items are kept "
        f"in {path} (marked partial); no run file, saved run, report or history "
        "entry was written or replaced"
    )
    return done


def _outputs(
    run: RunFile,
    settings: Settings,
    storage: Path,
    control_items: Iterable[ItemRecord],
    database: Path | None,
) -> dict[str, Callable[[], list[Path]]]:
    """The files asked for, by the option that asked, each as the function that writes them."""
    outputs: dict[str, Callable[[], list[Path]]] = {}
    if path := settings.json:
        outputs["--aibench-json"] = partial(_dump, path, run)
    if settings.save or settings.autosave:
        outputs["--aibench-save"] = lambda: [save_run(storage, run, settings.save)]
    if path := settings.benchmark_json:
        outputs["--aibench-benchmark-json"] = partial(_dump, path, to_pytest_benchmark(run))
    if path := settings.github_json:
        outputs["--aibench-github-json"] = partial(_dump, path, to_github_benchmark(run))
    if path := settings.local_reporter:
        outputs["--aibench-local-reporter"] = partial(write_local_tree, path, run)
    if path := settings.simple_local_reporter:
        outputs["--aibench-simple-local-reporter"] = partial(write_simple_local, path, run)
    if path := settings.html:
        outputs["--aibench-html"] = partial(
            _write_html, path, settings.ops, run, list(control_items), database
        )
    return outputs


def _dump(path: Path, data: Any) -> list[Path]:
    write_json(path, data)
    return [path]


def _append_history(database: Path, run: RunFile) -> str:
    """A store that cannot be written costs the history entry, never the run's other outputs."""
    import sqlite3

    from . import history

    try:
        history.append(database, run)
    except (OSError, ValueError, sqlite3.Error) as exc:
        return f"aibench: the run was not added to the history store {database}: {exc}"
    return f"aibench: history: run {history.run_uid(run)[:12]} added to {database}"


def _write_html(
    path: Path,
    top_operators: int,
    run: RunFile,
    control_items: list[ItemRecord],
    database: Path | None,
) -> list[Path]:
    from . import history, html_report

    trends: dict[str, list[history.TrendPoint]] = {}
    if database and database.is_file():
        with history.connect(database) as db:
            trends = history.trends(db, [item for item in run["items"] if item.get("metrics")])
    html_report.write(
        path, run, control_items=control_items, trends=trends, top_operators=top_operators
    )
    return [path]
