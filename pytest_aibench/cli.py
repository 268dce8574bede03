"""``aibench`` (also ``python -m pytest_aibench``): the history store without pytest, and
continuous mode (continuous/commands.py).

aibench history runs                         the runs, oldest first
aibench history query --model 'mobilenet*' --metric 'NET latency' --since 2026-11-01
aibench history query --samples --csv out.csv   every raw sample, as CSV
aibench history import .aibench/*.json       add saved run files (each run once)
aibench history push --db postgresql://ci@lab/aibench   send the runs a store could not take
aibench devices --devices android@lab1:5037,android@lab2:5037 --db postgresql://ci@lab/aibench
aibench serve --history postgresql://viewer@lab/aibench --port 8000   the lab's dashboard
aibench history report trends.html           the newest run as HTML, with trend lines
aibench commits --repo ../fw --last 16 --build 'make bench' --program bench -- --aibench-spec s
aibench changes --metric 'NET latency'          change points over the stored runs
aibench regressions --db URL                    the regressions that stand (exit 1: one is new)
aibench triage ALERT acknowledged --by NAME     a person's decision on one
aibench bisect --repo ../fw --good v1 --bad main --build ... --program ... -- ...
aibench watch --repo ../fw --branch main --build ... --program ... -- ...
aibench options ab                              the pytest options, their env and ini names
aibench spec model.onnx --out specs/model.json  a starter spec from the model's inputs
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError  # noqa: TID253  (its history commands need it)

from . import __version__
from .errors import AibenchError
from .options import OPTIONS, STORAGE
from .reporting.terminal import format_number, render_table
from .runfile import read_run
from .store import history
from .store.location import HISTORY_SPOOL, location, shown

DEFAULT_HISTORY = Path(STORAGE) / "history.sqlite"


def main(argv: Sequence[str] | None = None) -> int:
    from .continuous.commands import split_pytest_args

    own, pytest_args = split_pytest_args(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(own)
    args.pytest_args = pytest_args
    try:
        return int(args.action(args))
    except (OSError, ValueError, SQLAlchemyError, AibenchError) as exc:
        print(f"aibench: {history.problem(exc)}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aibench", description="pytest-aibench's tools")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    store = commands.add_parser(
        "history",
        help="list, query, export and import the history store that pytest appends every run to",
    )
    store.add_argument("--db", type=location, default=_default_db(), help=DB_HELP)
    # --db after the action too (``aibench history runs --db X``), as people type it
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--db", type=location, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    actions = store.add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser("runs", parents=[after], help="one line per run")
    listing.set_defaults(action=_runs)
    query = actions.add_parser(
        "query", parents=[after], help="one line per run, item and metric (or sample)"
    )
    query.add_argument(
        "--samples", action="store_true", help="every raw sample instead of the summaries"
    )
    query.add_argument(
        "--csv", metavar="FILE", help="write CSV to FILE ('-': standard output) instead of a table"
    )
    query.set_defaults(action=_query)
    for sub in (listing, query):
        _add_filters(sub)
    report = actions.add_parser(
        "report",
        parents=[after],
        help="the HTML report of a stored run (the newest "
        "by default) with its items' trends; needs matplotlib",
    )
    report.add_argument("output", type=Path, metavar="OUT.html")
    report.add_argument("--run", help="id (or the start of it) of the run to show")
    report.add_argument("--last", type=int, default=30, help="runs per trend line (30)")
    report.add_argument("--ops", type=int, default=5, help="operators shown per item (5)")
    report.set_defaults(action=_report)
    importing = actions.add_parser(
        "import", parents=[after], help="add saved run files (a run already there is skipped)"
    )
    importing.add_argument("files", nargs="+", type=Path, metavar="RUN.json")
    importing.set_defaults(action=_import)
    pushing = actions.add_parser(
        "push",
        parents=[after],
        help="send the runs that pytest kept in the spool because the store was out of reach",
    )
    pushing.add_argument(
        "--spool",
        type=Path,
        default=DEFAULT_HISTORY.parent / HISTORY_SPOOL,
        help="the spool folder (default: %(default)s)",
    )
    pushing.set_defaults(action=_push)
    lab_devices = commands.add_parser(
        "devices",
        help="the lab's devices across its hosts: each one's state and who holds its lease "
        "(pytest --aibench-list-devices with these options)",
    )
    lab_devices.add_argument(
        "--devices",
        help="as --aibench-devices: android@lab1:5037,android@lab2:5037,ssh://pi@board,...",
    )
    lab_devices.add_argument(
        "--db", type=location, help="the lab's store, whose leases are shown (--aibench-history)"
    )
    lab_devices.set_defaults(action=_devices)
    serving = commands.add_parser(
        "serve",
        help="the dashboard over a history store: the regressions that stand and a model x "
        "device matrix, runs, trends with change points, comparisons, A/B distributions "
        "(needs pytest-aibench[lab])",
    )
    serving.add_argument("--history", "--db", dest="db", type=location, default=_default_db())
    serving.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    serving.add_argument("--port", type=int, default=8000, help="port (%(default)s)")
    serving.add_argument(
        "--token-file",
        type=Path,
        help="a file holding the token that lets CI jobs POST run files to /api/runs "
        "(without one the dashboard is read-only); $AIBENCH_SERVE_TOKEN also works",
    )
    serving.set_defaults(action=_serve)
    options = commands.add_parser(
        "options",
        help="every pytest option of the plugin, with its environment variable and ini key "
        "(pytest --help shows the main ones)",
    )
    options.add_argument("words", nargs="*", help="only options whose text has all these words")
    options.set_defaults(action=_options)
    starter = commands.add_parser(
        "spec",
        help="a starter spec for a model file (ONNX, LiteRT): its inputs' names, shapes and "
        "types, one delay test",
    )
    starter.add_argument("model", type=Path, help="the model file (.onnx or .tflite)")
    starter.add_argument(
        "--out",
        type=Path,
        help="write the spec here (its model location relative to it); default: print it, "
        "the location relative to this folder",
    )
    starter.set_defaults(action=_spec)
    from .continuous.commands import add_commands

    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--db", type=location, default=_default_db(), help=DB_HELP)
    add_commands(commands, database)
    return parser


DB_HELP = (
    "the history store: a SQLite file or a postgresql://user@host/db URL "
    "(default: $AIBENCH_HISTORY, else %(default)s)"
)


def _default_db() -> history.Location:
    return location(os.environ.get("AIBENCH_HISTORY") or str(DEFAULT_HISTORY))


def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (globs such as 'mobilenet*'; all must match)")
    group.add_argument("--model", help="model name or spec identifier")
    group.add_argument("--item", help="pytest node id")
    group.add_argument("--device", help="device name, id or kind")
    group.add_argument("--metric", help="'NET latency' (type and metric) or 'latency'")
    group.add_argument(
        "--since",
        help="runs created on or after this UTC date or time (2026-11-01 or 2026-11-01T12:00)",
    )
    group.add_argument("--until", help="runs created on or before this UTC date or time")
    group.add_argument("--commit", help="commit id prefix")


def _filters(args: argparse.Namespace) -> history.Filters:
    return history.Filters(
        model=args.model,
        item=args.item,
        device=args.device,
        metric=args.metric,
        since=args.since,
        until=args.until,
        commit=args.commit,
    )


def _runs(args: argparse.Namespace) -> int:
    with history.connect(args.db, create=False) as db:
        rows = history.run_rows(db, _filters(args))
    _print_table(history.RUN_COLUMNS, [(*row[:2], (row[2] or "-")[:12], *row[3:]) for row in rows])
    return 0


def _query(args: argparse.Namespace) -> int:
    filters = _filters(args)
    header: Sequence[str]
    with history.connect(args.db, create=False) as db:
        if args.samples:
            header, rows = history.SAMPLE_COLUMNS, list(history.sample_rows(db, filters))
        else:
            header, rows = history.SUMMARY_COLUMNS, history.summaries(db, filters)
    if args.csv:
        _write_csv(args.csv, header, rows)
    else:  # the two commits shortened, as git shows them
        _print_table(header, [_readable((*r[:2], *_short(r[2:4]), *r[4:])) for r in rows])
    return 0


def _short(commits: Sequence[str | None]) -> list[str | None]:
    return [commit and commit[:12] for commit in commits]


def _readable(row: Sequence[Any]) -> tuple[str, ...]:
    return tuple(
        format_number(cell) if isinstance(cell, float) else "-" if cell is None else str(cell)
        for cell in row
    )


def _print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        print("aibench: nothing in the history store matches")
        return
    numeric = {i for i, cell in enumerate(rows[0]) if isinstance(cell, int | float)}
    cells = [tuple("-" if cell is None else str(cell) for cell in row) for row in rows]
    for line in render_table(cells, header, set(range(len(header))) - numeric):
        print(line)


def _write_csv(target: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Full precision (``repr`` of floats), unlike the table."""
    if target == "-":
        csv.writer(sys.stdout).writerows([header, *rows])
        return
    with open(target, "w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([header, *rows])
    print(f"aibench: wrote {target}", file=sys.stderr)


def _report(args: argparse.Namespace) -> int:
    from .reporting import html_report

    with history.connect(args.db, create=False) as db:
        run = history.load_run(db, args.run)
        trends = history.trends(db, run["items"], args.last)
    html_report.write(args.output, run, trends=trends, top_operators=args.ops)
    print(f"aibench: wrote {args.output} (run {run['id']} of {run['created']})")
    return 0


def _import(args: argparse.Namespace) -> int:
    """Each file checked on its own: one that is no run file is said and skipped (left where
    it is), the others are added."""
    added, refused = 0, 0
    for path in args.files:
        try:
            run = read_run(path)
        except (OSError, ValueError) as exc:
            print(f"aibench: not imported: {history.problem(exc)}", file=sys.stderr)
            refused += 1
            continue
        added += history.append(args.db, run)
    print(f"aibench: added {added} of {len(args.files)} runs to {shown(args.db)}")
    return 1 if refused else 0


def _devices(args: argparse.Namespace) -> int:
    import pytest

    argv = ["--aibench-list-devices", "-p", "no:cacheprovider"]
    argv += [f"--aibench-devices={args.devices}"] if args.devices else []
    argv += [f"--aibench-history={args.db}"] if args.db else []
    return int(pytest.main([*argv, *args.pytest_args]))


def _serve(args: argparse.Namespace) -> int:
    from .dashboard.app import serve

    token = os.environ.get("AIBENCH_SERVE_TOKEN") or None
    if args.token_file:
        token = args.token_file.read_text(encoding="utf-8").strip()
    if token is not None and len(token) < 16:
        raise ValueError("the upload token is shorter than 16 characters: make a longer one")
    with history.connect(args.db, create=False):  # a mistyped store: said now, not per page
        pass
    print(f"aibench: serving {shown(args.db)} on http://{args.host}:{args.port}/", flush=True)
    serve(args.db, args.host, args.port, token)
    return 0


def _push(args: argparse.Namespace) -> int:
    added, present, problems = history.push(args.db, args.spool)
    for line in problems:
        print(f"aibench: not sent: {line}", file=sys.stderr)
    print(
        f"aibench: pushed {added} runs to {shown(args.db)} ({present} were there already, "
        f"{len(problems)} not sent)"
    )
    return 1 if problems else 0


def _spec(args: argparse.Namespace) -> int:
    """A starter spec, printed or written; the dimensions it chose on stderr."""
    import json

    from .atomic import write_json
    from .runners.signatures import read_model_file
    from .spec.starter import starter_spec

    folder = args.out.parent if args.out else Path.cwd()
    spec, notes = starter_spec(args.model, read_model_file(args.model), folder)
    for note in notes:
        print(f"aibench: {note}", file=sys.stderr)
    if args.out:
        write_json(args.out, spec)
        print(f"aibench: wrote {args.out}; run it with: pytest --aibench-spec {args.out}")
    else:
        print(json.dumps(spec, indent=2))
    return 0


def _options(args: argparse.Namespace) -> int:
    """Each option as a paragraph: flag, environment variable, ini key, section, its help."""
    for option in OPTIONS:
        ini = f", ini {option.ini_key}" if option.ini else ""
        text = option.help.replace("%%", "%")
        head = f"{option.flag} {option.metavar}".rstrip()
        paragraph = f"{head}  [env {option.env}{ini}; {option.section}]\n    {text}"
        if all(word.lower() in paragraph.lower() for word in args.words):
            print(paragraph)
    return 0
