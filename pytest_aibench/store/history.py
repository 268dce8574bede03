"""The history store: every run appended to one database (store.py: a SQLite file by default,
or a lab's PostgreSQL), to be queried, plotted and served.

Tables: ``runs`` (one per pytest run, keyed by the run file's ``id``), ``devices``, ``items``
(one per measured item of a run, with the item's record minus its samples), ``metrics`` (the
summary of each metric key) and ``samples`` (every raw value). A run is appended in one
transaction, so it is all there or not there, and several processes on several hosts may
append at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    and_,
    distinct,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles

from ..atomic import write_json
from ..metrics import main_key
from ..names import path_component
from ..records import CommitDict, ItemRecord, MetricDict, RunFile
from ..runfile import RUN_FORMAT, RUN_VERSION, check_run, read_run
from ..verdicts.statistics import HIGHER, direction
from .location import Location, location, problem
from .schema import (
    DEVICE_KEY,
    SCHEMA_VERSION,
    connect,
    devices,
    items,
    metrics,
    runs,
    samples,
)
from .spool import set_aside

__all__ = ["SCHEMA_VERSION", "Location", "connect", "location", "problem"]
# Metric fields with columns of their own; the rest (info_string, summary_source, ...) is kept
# as JSON, so a stored run reads back as its run file had it.
_METRIC_COLUMNS = frozenset({"type", "metric", "unit", "num_runs", "summary", "values"})


def run_uid(run: RunFile) -> str:
    """The run's ``id``; run files written before ids existed get one from their content."""
    if run.get("id"):
        return str(run["id"])
    text = json.dumps(run, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def append(location: Location, run: RunFile) -> bool:
    """Add a run (items with metrics only); ``False`` if that run is there already."""
    uid = run_uid(run)
    with connect(location, write=True) as db:
        try:
            with db.begin():
                if db.execute(select(runs.c.id).where(runs.c.uid == uid)).first():
                    return False
                run_row = _insert_run(db, uid, run)
                for item in run["items"]:
                    if item.get("metrics"):
                        _insert_item(db, run_row, item)
        except IntegrityError:
            # another process appended the same run meanwhile (PostgreSQL: the unique uid)
            if db.execute(select(runs.c.id).where(runs.c.uid == uid)).first():
                return False
            raise
        return True


def _insert_run(db: Connection, uid: str, run: RunFile) -> int:
    commit: Mapping[str, Any] = run.get("commit") or {}
    machine = run.get("machine") or {}
    dirty = commit.get("dirty")
    return _insert(
        db,
        runs,
        uid=uid,
        created=run["created"],
        commit_id=commit.get("id"),
        branch=commit.get("branch"),
        dirty=None if dirty is None else int(bool(dirty)),
        node=machine.get("node"),
        machine=json.dumps(machine),
        plugin_version=(run.get("plugin") or {}).get("version"),
        build=json.dumps(run["build"]) if run.get("build") else None,
    )


def _insert(db: Connection, table: Any, **values: Any) -> int:
    return int(db.execute(table.insert().values(**values).returning(table.c.id)).scalar_one())


# the devices table's key columns, and the run file's device fields they hold
_DEVICE_FIELDS = dict(zip(DEVICE_KEY, ("kind", "id", "name", "hash", "abi", "os"), strict=True))


def _device_row(db: Connection, device: Mapping[str, Any] | None) -> int | None:
    if not device:
        return None
    key = {column: str(device.get(field, "")) for column, field in _DEVICE_FIELDS.items()}
    dialect = postgresql if db.dialect.name == "postgresql" else sqlite
    db.execute(dialect.insert(devices).values(**key).on_conflict_do_nothing())
    found = select(devices.c.id).where(*(devices.c[name] == value for name, value in key.items()))
    return int(db.execute(found).scalar_one())


def _insert_item(db: Connection, run_row: int, item: ItemRecord) -> None:
    case: Mapping[str, Any] = item.get("case") or {}
    record = {key: value for key, value in item.items() if key != "metrics"}
    item_row = _insert(
        db,
        items,
        run=run_row,
        nodeid=item["nodeid"],
        model=case.get("model"),
        identifier=case.get("identifier"),
        framework=case.get("framework"),
        outcome=item.get("outcome"),
        duration=item.get("duration"),
        device=_device_row(db, item.get("device")),
        comparison=item.get("comparison"),
        record=json.dumps(record),
    )
    for metric in item["metrics"]:
        summary = metric.get("summary") or {}
        metric_row = _insert(
            db,
            metrics,
            item=item_row,
            type=metric["type"],
            metric=metric["metric"],
            unit=metric.get("unit"),
            num_runs=metric.get("num_runs"),
            p50=summary.get("p50"),
            mean=summary.get("mean"),
            stdev=summary.get("stdev"),
            mad=summary.get("MAD"),
            summary=json.dumps(summary),
            extra=json.dumps(
                {key: value for key, value in metric.items() if key not in _METRIC_COLUMNS}
            ),
        )
        values = metric.get("values") or []
        if values:
            db.execute(
                samples.insert(),
                [
                    {"metric": metric_row, "seq": seq, "value": value}
                    for seq, value in enumerate(values)
                ],
            )


# -- queries --------------------------------------------------------------------------------


class _Glob(ColumnElement[bool]):
    """``column`` matches a shell glob (``mobilenet*``, ``?``, ``[ab]``), case-sensitively:
    SQLite's own GLOB there, a regular expression made from the glob on PostgreSQL."""

    inherit_cache = False
    type = Boolean()

    def __init__(self, column: Any, pattern: str) -> None:
        self.column, self.pattern = column, pattern


@compiles(_Glob)
def _glob_sqlite(element: _Glob, compiler: Any, **kw: Any) -> str:
    pattern = compiler.process(literal(element.pattern), **kw)
    return f"({compiler.process(element.column, **kw)} GLOB {pattern})"


@compiles(_Glob, "postgresql")
def _glob_postgresql(element: _Glob, compiler: Any, **kw: Any) -> str:
    pattern = compiler.process(literal(glob_regex(element.pattern)), **kw)
    return f"({compiler.process(element.column, **kw)} ~ {pattern})"


def glob_regex(pattern: str) -> str:
    """A glob as an anchored POSIX regular expression (``[!...]`` negates, as in a shell)."""
    out, index = ["^"], 0
    while index < len(pattern):
        char = pattern[index]
        closing = pattern.find("]", index + 2) if char == "[" else -1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif closing > 0:
            members = pattern[index + 1 : closing]
            negated = members.startswith("!")
            members = re.sub(r"([\\\]^])", r"\\\1", members[1:] if negated else members)
            out.append(f"[{'^' if negated else ''}{members}]")
            index = closing
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out) + "$"


@dataclass(frozen=True)
class Filters:
    """What to select; ``None`` selects everything. Patterns are globs (``mobilenet*``)."""

    model: str | None = None
    item: str | None = None
    device: str | None = None
    metric: str | None = None  # "NET latency" (type and metric) or "latency"
    since: str | None = None  # ISO date or time, UTC
    until: str | None = None
    commit: str | None = None  # a prefix
    nodeid: str | None = None  # exactly this item
    framework: str | None = None
    branch: str | None = None

    def where(self) -> ColumnElement[bool]:
        clauses: list[ColumnElement[bool]] = [true()]
        if self.model:
            clauses.append(
                or_(_Glob(items.c.model, self.model), _Glob(items.c.identifier, self.model))
            )
        if self.item:
            clauses.append(_Glob(items.c.nodeid, self.item))
        if self.nodeid:
            clauses.append(items.c.nodeid == self.nodeid)
        if self.device:
            clauses.append(
                or_(
                    *(_Glob(devices.c[name], self.device) for name in ("name", "device_id", "kind"))
                )
            )
        if self.metric:
            kind, _, name = self.metric.rpartition(" ")
            clauses.append(metrics.c.metric == name)
            if kind:
                clauses.append(metrics.c.type == kind)
        if self.since:
            clauses.append(runs.c.created >= self.since)
        if self.until:
            clauses.append(runs.c.created < _end_of(self.until))
        if self.commit:
            clauses.append(runs.c.commit_id.startswith(self.commit, autoescape=True))
        if self.framework:
            clauses.append(_Glob(items.c.framework, self.framework))
        if self.branch:
            clauses.append(_Glob(runs.c.branch, self.branch))
        return and_(*clauses)


def _end_of(day_or_time: str) -> str:
    """``--until 2026-11-28`` includes that whole day."""
    return day_or_time + "T99" if len(day_or_time) == 10 else day_or_time


_JOINED = (
    metrics.join(items, metrics.c.item == items.c.id)
    .join(runs, items.c.run == runs.c.id)
    .outerjoin(devices, items.c.device == devices.c.id)
)
_METRIC_KEY = (metrics.c.type + " " + metrics.c.metric).label("key")
# What a summary row and a sample row start with: created, run, the project's commit, the
# framework commit its build was made of (continuous mode's), item, device, metric, unit
_ROW_LEAD = (
    runs.c.created,
    runs.c.uid,
    runs.c.commit_id,
    runs.c.build,
    items.c.nodeid,
    devices.c.name,
    _METRIC_KEY,
    metrics.c.unit,
)

SUMMARY_COLUMNS = (
    "created",
    "run",
    "commit",
    "framework commit",
    "item",
    "device",
    "metric",
    "unit",
    "n",
    "p50",
    "mean",
    "stdev",
    "MAD",
    "outcome",
)


def summaries(db: Connection, filters: Filters) -> list[tuple[Any, ...]]:
    """One row per run, item and metric key, oldest run first."""
    query = (
        select(
            *_ROW_LEAD,
            metrics.c.num_runs,
            metrics.c.p50,
            metrics.c.mean,
            metrics.c.stdev,
            metrics.c.mad,
            items.c.outcome,
        )
        .select_from(_JOINED)
        .where(filters.where())
        .order_by(runs.c.created, runs.c.id, items.c.nodeid, metrics.c.id)
    )
    return [_lead_shown(row) for row in db.execute(query)]


def _lead_shown(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row of ``_ROW_LEAD`` with the build record as its commit id."""
    return (*row[:3], _object(row[3]).get("id"), *row[4:])


@dataclass(frozen=True)
class SeriesPoint:
    """One run's value of one item's metric, with the commit it measured: the framework commit
    of its build (``aibench commits``) where it has one, else the project's; and the run's own
    verdict on that metric, where it made one (an A/B item's, or one against a control run)."""

    run: str
    created: str
    commit: str | None
    commit_time: str | None
    subject: str | None
    value: float
    p10: float | None = None  # the run's spread, where the value is a p50
    p90: float | None = None
    status: str | None = None  # the run's verdict: regressed, improved, unchanged, ...
    ratio: float | None = None  # the verdict's estimate of treatment / control
    low: float | None = None  # and its interval
    high: float | None = None
    samples: int | None = None  # how many raw values the p50 is of


# item node id, device name, metric key, and what the values are: "p50", or "A/B ratio" (the
# paired estimate of treatment / control, which a machine's drift between runs cannot move)
SeriesKey = tuple[str, str, str, str]
P50, AB_RATIO = "p50", "A/B ratio"


@dataclass(frozen=True)
class Series:
    """One item's metric on one device, run by run in commit order."""

    model: str  # the spec's model name, else the test's node id
    higher_is_better: bool
    points: list[SeriesPoint]


def series(db: Connection, filters: Filters) -> dict[SeriesKey, list[SeriesPoint]]:
    """Per item, device, metric and kind of value: the runs' values in commit order (the
    build's commit time, else the run's time), oldest first."""
    return {key: found.points for key, found in described_series(db, filters).items()}


def described_series(db: Connection, filters: Filters) -> dict[SeriesKey, Series]:
    """``series``, each with its model and which way is better."""
    query = (
        select(
            items.c.nodeid,
            func.coalesce(devices.c.name, ""),
            _METRIC_KEY,
            items.c.record,
            items.c.model,
            runs.c.uid,
            runs.c.created,
            runs.c.commit_id,
            runs.c.build,
            metrics.c.p50,
            metrics.c.num_runs,
            metrics.c.unit,
            metrics.c.summary,
            metrics.c.extra,
            runs.c.id,
        )
        .select_from(_JOINED)
        .where(filters.where(), metrics.c.p50.is_not(None))
    )
    rows = []
    for (
        nodeid,
        device,
        metric,
        record,
        model,
        run,
        created,
        commit,
        build_text,
        *rest,
    ) in db.execute(query):
        p50, count, unit, summary, extra, row = rest
        build = _object(build_text)
        verdict = _verdict_on(json.loads(record), metric)
        ratio = verdict.get("ratio") if verdict.get("comparison") == "ab" else None
        spread = _object(summary) if ratio is None else {}
        point = SeriesPoint(
            run,
            created,
            build.get("id") or commit,
            build.get("time"),
            build.get("subject"),
            p50 if ratio is None else float(ratio),
            spread.get("p10"),
            spread.get("p90"),
            verdict.get("status"),
            verdict.get("ratio"),
            verdict.get("low"),
            verdict.get("high"),
            count,
        )
        kind = P50 if ratio is None else AB_RATIO
        described = {"metric": metric, "unit": unit, **_object(extra)}
        better = direction(cast("MetricDict", described)) == HIGHER
        order = (build.get("time") or created, created, row)
        rows.append((order, (nodeid, device, metric, kind), point, model or nodeid, better))
    found: dict[SeriesKey, Series] = {}
    for _, key, point, model, better in sorted(rows, key=lambda row: row[0]):
        found.setdefault(key, Series(model, better, [])).points.append(point)
    return found


def _verdict_on(record: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """The item's verdict on ``metric``, with ``comparison`` set to the item's (an A/B
    item's ratio is the series' value); empty where the run made none."""
    for verdict in record.get("verdicts") or []:
        if verdict.get("key") == metric:
            return {**verdict, "comparison": record.get("comparison")}
    return {}


SAMPLE_COLUMNS = (
    "created",
    "run",
    "commit",
    "framework commit",
    *("item", "device", "metric", "unit", "seq", "value"),
)


def sample_rows(db: Connection, filters: Filters) -> Iterator[tuple[Any, ...]]:
    query = (
        select(
            *_ROW_LEAD,
            samples.c.seq,
            samples.c.value,
        )
        .select_from(_JOINED.join(samples, samples.c.metric == metrics.c.id))
        .where(filters.where())
        .order_by(runs.c.created, runs.c.id, items.c.nodeid, metrics.c.id, samples.c.seq)
    )
    for row in db.execute(query):
        yield _lead_shown(row)


RUN_COLUMNS = ("created", "run", "commit", "branch", "node", "items", "metric rows")


def run_rows(db: Connection, filters: Filters) -> list[tuple[Any, ...]]:
    query = (
        select(
            runs.c.created,
            runs.c.uid,
            runs.c.commit_id,
            runs.c.branch,
            runs.c.node,
            func.count(distinct(items.c.id)),
            func.count(metrics.c.id),
        )
        .select_from(_JOINED)
        .where(filters.where())
        .group_by(runs.c.id)
        .order_by(runs.c.created, runs.c.id)
    )
    return [tuple(row) for row in db.execute(query)]


def item_names(db: Connection, uids: Sequence[str]) -> dict[str, list[str]]:
    """What each run measured, by name: ``mobilenet_v2[x-1]`` (model and spec identifier),
    or the node id of a test that uses the fixture; sorted, each name once."""
    query = (
        select(runs.c.uid, items.c.model, items.c.identifier, items.c.nodeid)
        .select_from(items.join(runs, items.c.run == runs.c.id))
        .where(runs.c.uid.in_(list(uids)))
        .distinct()
    )
    names: dict[str, set[str]] = {uid: set() for uid in uids}
    for uid, model, identifier, nodeid in db.execute(query):
        names[uid].add(f"{model}[{identifier}]" if model else nodeid)
    return {uid: sorted(found) for uid, found in names.items()}


def newest_uids(db: Connection, count: int) -> list[str]:
    """The ids of the newest ``count`` stored runs, newest first; ``ValueError`` if none."""
    newest = select(runs.c.uid).order_by(runs.c.created.desc(), runs.c.id.desc()).limit(count)
    uids = list(db.execute(newest).scalars())
    if not uids:
        raise ValueError("the history store holds no run")
    return uids


def last_runs(db: Connection, count: int) -> list[RunFile]:
    """The newest ``count`` stored runs, oldest first."""
    return [load_run(db, uid) for uid in reversed(newest_uids(db, count))]


class UnreadableRun(ValueError):
    """A stored run that is no run file any more (stored before every door checked it)."""


def find_run(db: Connection, reference: str) -> RunFile:
    """The run an id prefix names, else the newest run of the commit a prefix names."""
    try:
        return load_run(db, reference)
    except UnreadableRun:
        raise
    except ValueError:
        newest = (
            select(runs.c.uid)
            .where(runs.c.commit_id.startswith(reference, autoescape=True))
            .order_by(runs.c.created.desc(), runs.c.id.desc())
            .limit(1)
        )
        uid = db.execute(newest).scalar_one_or_none()
        if uid is None:
            raise ValueError(
                f"no run or commit in the history store starts {reference!r}"
            ) from None
        return load_run(db, uid)


def load_run(db: Connection, uid_prefix: str | None = None) -> RunFile:
    """A stored run as a run file has it (items with their metrics and samples): the newest,
    or the one whose id starts with ``uid_prefix``."""
    query = (
        select(runs)
        .where(runs.c.uid.startswith(uid_prefix or "", autoescape=True))
        .order_by(runs.c.created.desc(), runs.c.id.desc())
    )
    rows = db.execute(query).mappings().all()
    if not rows or (uid_prefix and len(rows) > 1):
        found = "no run" if not rows else f"{len(rows)} runs"
        raise ValueError(
            f"{found} in the history store with an id starting {uid_prefix!r}"
            if uid_prefix
            else "the history store holds no run"
        )
    row = rows[0]
    commit: CommitDict | None = (
        {"id": row["commit_id"], "branch": row["branch"], "time": None, "dirty": bool(row["dirty"])}
        if row["commit_id"]
        else None
    )
    stored = select(items.c.id, items.c.record).where(items.c.run == row["id"]).order_by(items.c.id)
    run: RunFile = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "plugin": {"name": "pytest-aibench", "version": row["plugin_version"] or ""},
        "id": row["uid"],
        "created": row["created"],
        "commit": commit,
        "machine": json.loads(row["machine"]),
        "items": [_load_item(db, item_row, record) for item_row, record in db.execute(stored)],
    }
    if row["build"]:
        run["build"] = json.loads(row["build"])
    try:  # a page or report over it says what is wrong with it, not a traceback
        return check_run(run, f"the stored run {row['uid']}")
    except ValueError as exc:
        raise UnreadableRun(str(exc)) from None


def _object(text: str | None) -> dict[str, Any]:
    """A JSON object column; ``{}`` for one that holds anything else (a run stored before
    every door checked run files could hold text where an object belongs)."""
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


def _load_item(db: Connection, item_row: int, record: str) -> ItemRecord:
    item: ItemRecord = json.loads(record)
    query = select(metrics).where(metrics.c.item == item_row).order_by(metrics.c.id)
    item["metrics"] = [_load_metric(db, dict(metric)) for metric in db.execute(query).mappings()]
    return item


def _load_metric(db: Connection, row: Mapping[str, Any]) -> MetricDict:
    values = select(samples.c.value).where(samples.c.metric == row["id"]).order_by(samples.c.seq)
    # the other fields of the record (summary_source, info_string, ...) are kept in ``extra``
    record = {
        "type": row["type"],
        "metric": row["metric"],
        "unit": row["unit"],
        "num_runs": row["num_runs"],
        "summary": json.loads(row["summary"]),
        **json.loads(row["extra"]),
        "values": list(db.execute(values).scalars()),
    }
    return cast("MetricDict", record)


@dataclass(frozen=True)
class TrendPoint:
    created: str
    commit: str | None
    run: str
    p50: float
    p10: float | None  # the spread, so a move can be told from noise
    p90: float | None


def trends(
    db: Connection, items_of_run: Iterable[ItemRecord], last: int = 30
) -> dict[str, list[TrendPoint]]:
    """Per item (by node id), the p50 of its main metric (``report.main_key``) over the
    ``last`` runs that measured it, oldest first."""
    found: dict[str, list[TrendPoint]] = {}
    for item in items_of_run:
        key = main_key(item)
        if key is None:
            continue
        found[item["nodeid"]] = trend(db, Filters(nodeid=item["nodeid"], metric=key), last)
    return found


def trend(db: Connection, filters: Filters, last: int = 30) -> list[TrendPoint]:
    """The p50 and the p10-p90 band of what ``filters`` selects, over its ``last`` runs."""
    query = (
        select(runs.c.created, runs.c.commit_id, runs.c.uid, metrics.c.p50, metrics.c.summary)
        .select_from(_JOINED)
        .where(filters.where(), metrics.c.p50.is_not(None))
        .order_by(runs.c.created.desc(), runs.c.id.desc())
        .limit(last)
    )
    points = []
    for created, commit, run, p50, summary in db.execute(query):
        spread = json.loads(summary)
        points.append(TrendPoint(created, commit, run, p50, spread.get("p10"), spread.get("p90")))
    return points[::-1]


# -- the spool: runs a store could not take, until ``aibench history push`` --------------------


def spool_run(spool: Path, run: RunFile) -> Path:
    """Keep a run for a later push (written whole or not at all)."""
    path = spool / f"{path_component(run_uid(run), 'run id')}.json"
    write_json(path, run)
    return path


def push(location: Location, spool: Path) -> tuple[int, int, list[str]]:
    """Send the spooled runs: (added, already there, problems). A run leaves the spool only
    once the store holds it."""
    added = present = 0
    problems = []
    for path in sorted(spool.glob("*.json")):
        try:
            run = read_run(path)
        except (OSError, ValueError) as exc:  # not a run file: out of the way, kept
            problems.append(set_aside(path, problem(exc)))
            continue
        try:
            fresh = append(location, run)
        except Exception as exc:  # the store's trouble: the run waits for the next push
            problems.append(f"{path}: {problem(exc)}")
            continue
        added, present = added + fresh, present + (not fresh)
        path.unlink()
    return added, present, problems
