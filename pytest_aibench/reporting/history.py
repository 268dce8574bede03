"""The history store: every run appended to one SQLite database, to be queried and plotted.

Tables: ``runs`` (one per pytest run, keyed by the run file's ``id``), ``devices``, ``items``
(one per measured item of a run, with the item's record minus its samples), ``metrics`` (the
summary of each metric key) and ``samples`` (every raw value). A run is appended in one
``BEGIN IMMEDIATE`` transaction with a generous busy timeout, so several processes may append
at once: each waits for the other's short write instead of failing, and a run is all there or
not there. The rollback journal (SQLite's default) is kept rather than WAL, which needs shared
memory and so breaks on network file systems.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..records import CommitDict, ItemRecord, MetricDict, RunFile
from .runfile import RUN_FORMAT, RUN_VERSION
from .terminal import main_key

SCHEMA_VERSION = 2
# Metric fields with columns of their own; the rest (info_string, summary_source, ...) is kept
# as JSON, so a stored run reads back as its run file had it.
_METRIC_COLUMNS = frozenset({"type", "metric", "unit", "num_runs", "summary", "values"})
BUSY_TIMEOUT_S = 120.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, created TEXT NOT NULL,
    commit_id TEXT, branch TEXT, dirty INTEGER, node TEXT, machine TEXT NOT NULL,
    plugin_version TEXT, build TEXT);
CREATE TABLE IF NOT EXISTS devices (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, device_id TEXT NOT NULL, name TEXT NOT NULL,
    hash TEXT NOT NULL, abi TEXT NOT NULL, os TEXT NOT NULL,
    UNIQUE (kind, device_id, name, hash, abi, os));
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    nodeid TEXT NOT NULL, model TEXT, identifier TEXT, framework TEXT, outcome TEXT,
    duration REAL, device INTEGER REFERENCES devices(id), comparison TEXT,
    record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY, item INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    type TEXT NOT NULL, metric TEXT NOT NULL, unit TEXT, num_runs INTEGER,
    p50 REAL, mean REAL, stdev REAL, mad REAL, summary TEXT NOT NULL, extra TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    metric INTEGER NOT NULL REFERENCES metrics(id) ON DELETE CASCADE, seq INTEGER NOT NULL,
    value REAL NOT NULL, PRIMARY KEY (metric, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_by_node ON items (nodeid);
CREATE INDEX IF NOT EXISTS metrics_by_item ON metrics (item);
"""
# What takes a store of an older version to the next (a new store gets _SCHEMA whole).
_UPGRADES = {2: "ALTER TABLE runs ADD COLUMN build TEXT"}  # the framework commit, as JSON


def run_uid(run: RunFile) -> str:
    """The run's ``id``; run files written before ids existed get one from their content."""
    if run.get("id"):
        return str(run["id"])
    text = json.dumps(run, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@contextmanager
def connect(path: Path, *, create: bool = True) -> Iterator[sqlite3.Connection]:
    """An open database with the schema in place; ``create=False`` refuses a missing file."""
    if not create and not path.is_file():
        raise FileNotFoundError(
            f"no history database at {path} (runs are appended to it by "
            "pytest; --aibench-history names another)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)) as db:
        db.execute("PRAGMA foreign_keys = ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"{path} has history schema {version}; this pytest-aibench "
                f"knows {SCHEMA_VERSION}: upgrade pytest-aibench"
            )
        if version < SCHEMA_VERSION:
            with transaction(db):
                # statement by statement: executescript would commit the open transaction
                for statement in _upgrade(version):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        yield db


def _upgrade(version: int) -> list[str]:
    if version == 0:  # a new store
        return [statement for statement in _SCHEMA.split(";") if statement.strip()]
    return [_UPGRADES[to] for to in range(version + 1, SCHEMA_VERSION + 1)]


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` takes the write lock first, so two appenders queue rather than
    deadlock on upgrading read locks."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def append(path: Path, run: RunFile) -> bool:
    """Add a run (items with metrics only); ``False`` if that run is there already."""
    with connect(path) as db, transaction(db):
        uid = run_uid(run)
        if db.execute("SELECT 1 FROM runs WHERE uid = ?", (uid,)).fetchone():
            return False
        run_row = _insert_run(db, uid, run)
        for item in run["items"]:
            if item.get("metrics"):
                _insert_item(db, run_row, item)
        return True


def _insert_run(db: sqlite3.Connection, uid: str, run: RunFile) -> int:
    commit: Mapping[str, Any] = run.get("commit") or {}
    machine = run.get("machine") or {}
    cursor = db.execute(
        "INSERT INTO runs (uid, created, commit_id, branch, dirty, node, machine, plugin_version,"
        " build) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            uid,
            run["created"],
            commit.get("id"),
            commit.get("branch"),
            commit.get("dirty"),
            machine.get("node"),
            json.dumps(machine),
            (run.get("plugin") or {}).get("version"),
            json.dumps(run["build"]) if run.get("build") else None,
        ),
    )
    return int(cursor.lastrowid or 0)


def _device_row(db: sqlite3.Connection, device: Mapping[str, Any] | None) -> int | None:
    if not device:
        return None
    key = tuple(str(device.get(name, "")) for name in ("kind", "id", "name", "hash", "abi", "os"))
    db.execute(
        "INSERT OR IGNORE INTO devices (kind, device_id, name, hash, abi, os) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        key,
    )
    row = db.execute(
        "SELECT id FROM devices WHERE kind = ? AND device_id = ? AND name = ? AND "
        "hash = ? AND abi = ? AND os = ?",
        key,
    ).fetchone()
    return int(row[0])


def _insert_item(db: sqlite3.Connection, run_row: int, item: ItemRecord) -> None:
    case: Mapping[str, Any] = item.get("case") or {}
    record = {key: value for key, value in item.items() if key != "metrics"}
    cursor = db.execute(
        "INSERT INTO items (run, nodeid, model, identifier, framework, outcome, duration, "
        "device, comparison, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_row,
            item["nodeid"],
            case.get("model"),
            case.get("identifier"),
            case.get("framework"),
            item.get("outcome"),
            item.get("duration"),
            _device_row(db, item.get("device")),
            item.get("comparison"),
            json.dumps(record),
        ),
    )
    item_row = cursor.lastrowid
    for metric in item["metrics"]:
        summary = metric.get("summary") or {}
        extra = {key: value for key, value in metric.items() if key not in _METRIC_COLUMNS}
        cursor = db.execute(
            "INSERT INTO metrics (item, type, metric, unit, num_runs, p50, mean, stdev, mad, "
            "summary, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item_row,
                metric["type"],
                metric["metric"],
                metric.get("unit"),
                metric.get("num_runs"),
                summary.get("p50"),
                summary.get("mean"),
                summary.get("stdev"),
                summary.get("MAD"),
                json.dumps(summary),
                json.dumps(extra),
            ),
        )
        db.executemany(
            "INSERT INTO samples (metric, seq, value) VALUES (?, ?, ?)",
            (
                (cursor.lastrowid, seq, value)
                for seq, value in enumerate(metric.get("values") or [])
            ),
        )


# -- queries --------------------------------------------------------------------------------


def _load_metric(
    db: sqlite3.Connection,
    metric_row: int,
    kind: str,
    metric: str,
    unit: str,
    num_runs: int,
    summary: str,
    extra: str,
) -> MetricDict:
    samples = db.execute("SELECT value FROM samples WHERE metric = ? ORDER BY seq", (metric_row,))
    # the other fields of the record (summary_source, info_string, ...) are kept in ``extra``
    record = {
        "type": kind,
        "metric": metric,
        "unit": unit,
        "num_runs": num_runs,
        "summary": json.loads(summary),
        **json.loads(extra),
        "values": [value for (value,) in samples],
    }
    return cast("MetricDict", record)


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

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = ["1"]
        args: list[Any] = []
        if self.model:
            clauses.append("(items.model GLOB ? OR items.identifier GLOB ?)")
            args += [self.model, self.model]
        if self.item:
            clauses.append("items.nodeid GLOB ?")
            args.append(self.item)
        if self.device:
            clauses.append(
                "(devices.name GLOB ? OR devices.device_id GLOB ? OR devices.kind GLOB ?)"
            )
            args += [self.device] * 3
        if self.metric:
            kind, _, name = self.metric.rpartition(" ")
            clauses.append("metrics.metric = ?" + (" AND metrics.type = ?" if kind else ""))
            args += [name, kind] if kind else [name]
        if self.since:
            clauses.append("runs.created >= ?")
            args.append(self.since)
        if self.until:
            clauses.append("runs.created < ?")
            args.append(_end_of(self.until))
        if self.commit:
            clauses.append("runs.commit_id LIKE ?")
            args.append(self.commit.replace("%", "") + "%")
        return " AND ".join(clauses), args


def _end_of(day_or_time: str) -> str:
    """``--until 2026-11-28`` includes that whole day."""
    return day_or_time + "T99" if len(day_or_time) == 10 else day_or_time


_JOINED = (
    "FROM metrics JOIN items ON metrics.item = items.id JOIN runs ON items.run = runs.id "
    "LEFT JOIN devices ON items.device = devices.id"
)

SUMMARY_COLUMNS = (
    "created",
    "run",
    "commit",
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


def summaries(db: sqlite3.Connection, filters: Filters) -> list[tuple[Any, ...]]:
    """One row per run, item and metric key, oldest run first."""
    where, args = filters.where()
    return db.execute(
        "SELECT runs.created, runs.uid, runs.commit_id, items.nodeid, devices.name, "
        "metrics.type || ' ' || metrics.metric, metrics.unit, metrics.num_runs, metrics.p50, "
        f"metrics.mean, metrics.stdev, metrics.mad, items.outcome {_JOINED} WHERE {where} "
        "ORDER BY runs.created, runs.id, items.nodeid, metrics.id",
        args,
    ).fetchall()


@dataclass(frozen=True)
class SeriesPoint:
    """One run's value of one item's metric, with the commit it measured: the framework commit
    of its build (``aibench commits``) where it has one, else the project's."""

    run: str
    created: str
    commit: str | None
    commit_time: str | None
    subject: str | None
    value: float


# item node id, device name, metric key, and what the values are: "p50", or "A/B ratio" (the
# paired estimate of treatment / control, which a machine's drift between runs cannot move)
SeriesKey = tuple[str, str, str, str]
P50, AB_RATIO = "p50", "A/B ratio"


def series(db: sqlite3.Connection, filters: Filters) -> dict[SeriesKey, list[SeriesPoint]]:
    """Per item, device, metric and kind of value: the runs' values in commit order (the
    build's commit time, else the run's time), oldest first."""
    where, args = filters.where()
    build = "json_extract(runs.build, '$.{}')".format
    rows = db.execute(
        "SELECT items.nodeid, COALESCE(devices.name, ''), metrics.type || ' ' || metrics.metric,"
        f" items.record, runs.uid, runs.created, COALESCE({build('id')}, runs.commit_id),"
        f" {build('time')}, {build('subject')}, metrics.p50 {_JOINED}"
        f" WHERE {where} AND metrics.p50 IS NOT NULL"
        f" ORDER BY COALESCE({build('time')}, runs.created), runs.created, runs.id",
        args,
    ).fetchall()
    found: dict[SeriesKey, list[SeriesPoint]] = {}
    for nodeid, device, metric, record, run, created, commit, time, subject, p50 in rows:
        ratio = _ab_ratio(json.loads(record), metric)
        kind, value = (P50, p50) if ratio is None else (AB_RATIO, ratio)
        point = SeriesPoint(run, created, commit, time, subject, value)
        found.setdefault((nodeid, device, metric, kind), []).append(point)
    return found


def _ab_ratio(record: Mapping[str, Any], metric: str) -> float | None:
    if record.get("comparison") != "ab":
        return None
    for verdict in record.get("verdicts") or []:
        if verdict.get("key") == metric and verdict.get("ratio"):
            return float(verdict["ratio"])
    return None


SAMPLE_COLUMNS = ("created", "run", "commit", "item", "device", "metric", "unit", "seq", "value")


def samples(db: sqlite3.Connection, filters: Filters) -> Iterator[tuple[Any, ...]]:
    where, args = filters.where()
    yield from db.execute(
        "SELECT runs.created, runs.uid, runs.commit_id, items.nodeid, devices.name, "
        "metrics.type || ' ' || metrics.metric, metrics.unit, samples.seq, samples.value "
        f"{_JOINED} JOIN samples ON samples.metric = metrics.id WHERE {where} "
        "ORDER BY runs.created, runs.id, items.nodeid, metrics.id, samples.seq",
        args,
    )


RUN_COLUMNS = ("created", "run", "commit", "branch", "node", "items", "metric rows")


def runs(db: sqlite3.Connection, filters: Filters) -> list[tuple[Any, ...]]:
    where, args = filters.where()
    return db.execute(
        "SELECT runs.created, runs.uid, runs.commit_id, runs.branch, runs.node, "
        f"COUNT(DISTINCT items.id), COUNT(metrics.id) {_JOINED} WHERE {where} "
        "GROUP BY runs.id ORDER BY runs.created, runs.id",
        args,
    ).fetchall()


def last_runs(db: sqlite3.Connection, count: int) -> list[RunFile]:
    """The newest ``count`` stored runs, oldest first."""
    uids = [
        uid
        for (uid,) in db.execute(
            "SELECT uid FROM runs ORDER BY created DESC, id DESC LIMIT ?", (count,)
        )
    ]
    if not uids:
        raise ValueError("the history store holds no run")
    return [load_run(db, uid) for uid in reversed(uids)]


def load_run(db: sqlite3.Connection, uid_prefix: str | None = None) -> RunFile:
    """A stored run as a run file has it (items with their metrics and samples): the newest,
    or the one whose id starts with ``uid_prefix``."""
    rows = db.execute(
        "SELECT id, uid, created, commit_id, branch, dirty, machine, plugin_version, build "
        "FROM runs WHERE uid LIKE ? ORDER BY created DESC, id DESC",
        [(uid_prefix or "").replace("%", "") + "%"],
    ).fetchall()
    if not rows or (uid_prefix and len(rows) > 1):
        found = "no run" if not rows else f"{len(rows)} runs"
        raise ValueError(
            f"{found} in the history store with an id starting {uid_prefix!r}"
            if uid_prefix
            else "the history store holds no run"
        )
    row_id, uid, created, commit_id, branch, dirty, machine, plugin_version, build = rows[0]
    commit: CommitDict | None = (
        {"id": commit_id, "branch": branch, "time": None, "dirty": bool(dirty)}
        if commit_id
        else None
    )
    run: RunFile = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "plugin": {"name": "pytest-aibench", "version": plugin_version or ""},
        "id": uid,
        "created": created,
        "commit": commit,
        "machine": json.loads(machine),
        "items": [
            _load_item(db, item_row, record)
            for item_row, record in db.execute(
                "SELECT id, record FROM items WHERE run = ? ORDER BY id", (row_id,)
            )
        ],
    }
    if build:
        run["build"] = json.loads(build)
    return run


def _load_item(db: sqlite3.Connection, item_row: int, record: str) -> ItemRecord:
    item: ItemRecord = json.loads(record)
    rows = db.execute(
        "SELECT id, type, metric, unit, num_runs, summary, extra FROM metrics "
        "WHERE item = ? ORDER BY id",
        (item_row,),
    ).fetchall()
    item["metrics"] = [_load_metric(db, *row) for row in rows]
    return item


@dataclass(frozen=True)
class TrendPoint:
    created: str
    commit: str | None
    run: str
    p50: float
    p10: float | None  # the spread, so a move can be told from noise
    p90: float | None


def trends(
    db: sqlite3.Connection, items: Iterable[ItemRecord], last: int = 30
) -> dict[str, list[TrendPoint]]:
    """Per item (by node id), the p50 of its main metric (``report.main_key``) over the
    ``last`` runs that measured it, oldest first."""
    found: dict[str, list[TrendPoint]] = {}
    for item in items:
        key = main_key(item)
        if key is None:
            continue
        where, args = Filters(item=_literal_glob(item["nodeid"]), metric=key).where()
        rows = db.execute(
            "SELECT runs.created, runs.commit_id, runs.uid, metrics.p50, "
            "json_extract(metrics.summary, '$.p10'), json_extract(metrics.summary, '$.p90') "
            f"{_JOINED} WHERE {where} AND metrics.p50 IS NOT NULL "
            "ORDER BY runs.created DESC, runs.id DESC LIMIT ?",
            [*args, last],
        ).fetchall()
        found[item["nodeid"]] = [TrendPoint(*row) for row in reversed(rows)]
    return found


def _literal_glob(text: str) -> str:
    """A node id as a GLOB pattern that matches only itself (ids hold ``[`` and ``]``)."""
    return "".join(f"[{char}]" if char in "*?[]" else char for char in text)
