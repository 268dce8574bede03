"""Where a finished run goes: the run file and its exports, FAI-PEP's reporter outputs, the
history store, the remote reporter and the HTML report. Called once, by the controller."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..atomic import write_json
from ..endpoint import Endpoint
from ..options import Settings
from ..records import ItemRecord, RunFile
from ..runfile import run_filename, save_run
from ..store.location import HISTORY_SPOOL, Location, exists, history_location, shown
from . import html_report
from .exports import to_github_benchmark, to_pytest_benchmark, to_pytorch_oss
from .faipep import simple_screen_lines, write_local_tree, write_simple_local
from .remote import Reporter


@dataclass
class Published:
    written: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


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
    database = history_location(settings.history, storage)
    if measured and database:  # first, so that the HTML report's trends include this run
        done.lines.append(_append_history(database, run, storage / HISTORY_SPOOL))
    for option, write in _outputs(run, settings, storage, control_items, database).items():
        try:
            done.written += write()
        except Exception as exc:  # one output that fails never costs the others
            done.errors.append(f"aibench: {option}: could not write: {exc}")
    if measured and settings.remote_reporter:
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
    database: Location | None,
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
    if path := settings.pytorch_json:
        outputs["--aibench-pytorch-json"] = partial(_dump, path, to_pytorch_oss(run))
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


def _append_history(database: Location, run: RunFile, spool: Path) -> str:
    """A store that cannot be reached or written keeps the run in the spool, for ``aibench
    history push`` to send later; it never costs the run's other outputs."""
    from ..store import history  # noqa: PLC0415  (SQLAlchemy, for a run that has a store)

    try:
        history.append(database, run)
    except Exception as exc:  # a server down, a locked or unwritable file, a newer schema
        problem = history.problem(exc)
        try:
            kept = history.spool_run(spool, run)
        except OSError as spool_error:
            return (
                f"aibench: the run was not added to the history store {shown(database)} "
                f"({problem}) and could not be spooled: {spool_error}"
            )
        return (
            f"aibench: the run was not added to the history store {shown(database)} "
            f"({problem}): kept in {kept}; 'aibench history push --db {shown(database)}' "
            "sends it"
        )
    return f"aibench: history: run {history.run_uid(run)[:12]} added to {shown(database)}"


def _write_html(
    path: Path,
    top_operators: int,
    run: RunFile,
    control_items: list[ItemRecord],
    database: Location | None,
) -> list[Path]:
    from ..store import history  # noqa: PLC0415  (SQLAlchemy, for a run that has a store)

    trends: dict[str, list[history.TrendPoint]] = {}
    if database and exists(database):
        measured = [item for item in run["items"] if item.get("metrics")]
        # a store out of reach: a page without trends
        with contextlib.suppress(Exception), history.connect(database) as db:
            trends = history.trends(db, measured)
    html_report.write(
        path, run, control_items=control_items, trends=trends, top_operators=top_operators
    )
    return [path]
