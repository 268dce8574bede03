"""Where the history lives: a SQLite file (the default, no server) or a PostgreSQL database that
a team's lab shares (``postgresql://user@host/db``), through one code path: SQLAlchemy Core.

The schema is versioned. A SQLite store keeps its version where SQLite keeps one (``PRAGMA
user_version``, as the first stores did); a PostgreSQL store in a one-row table. Opening a store
of an older version upgrades it in place, in one transaction, under a lock, so that two
processes opening an old store at once upgrade it once.

SQLite: a write takes the write lock first (``BEGIN IMMEDIATE``) with a generous busy timeout,
so appenders queue for each other's short writes rather than fail or deadlock. The rollback
journal (SQLite's default) is kept rather than WAL, which needs shared memory and so breaks on
network file systems. PostgreSQL: plain transactions; a run's unique id settles a race between
two processes appending the same run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.pool import NullPool

from .location import Location, shown, url_of

SCHEMA_VERSION = 4
BUSY_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 10

metadata = MetaData()
DEVICE_KEY = ("kind", "device_id", "name", "hash", "abi", "os")  # one row per distinct device
runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uid", Text, nullable=False, unique=True),
    Column("created", Text, nullable=False),
    Column("commit_id", Text),
    Column("branch", Text),
    Column("dirty", Integer),
    Column("node", Text),
    Column("machine", Text, nullable=False),
    Column("plugin_version", Text),
    Column("build", Text),  # the framework commit of a continuous-mode build, as JSON
)
devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    *(Column(name, Text, nullable=False) for name in DEVICE_KEY),
    UniqueConstraint(*DEVICE_KEY),
)
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("nodeid", Text, nullable=False),
    *(Column(name, Text) for name in ("model", "identifier", "framework", "outcome")),
    Column("duration", Float),
    Column("device", Integer, ForeignKey("devices.id")),
    Column("comparison", Text),
    Column("record", Text, nullable=False),  # the item's record without its metrics, as JSON
    Index("items_by_node", "nodeid"),
)
metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item", Integer, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("type", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("unit", Text),
    Column("num_runs", Integer),
    *(Column(name, Float) for name in ("p50", "mean", "stdev", "mad")),
    Column("summary", Text, nullable=False),
    Column("extra", Text, nullable=False),
    Index("metrics_by_item", "item"),
)
samples = Table(
    "samples",
    metadata,
    Column("metric", Integer, ForeignKey("metrics.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("value", Float, nullable=False),
)
# What a person decided of each regression the lab found (store/regressions.py): new (no row),
# acknowledged, fixed, won't fix; by whom and when.
triage = Table(
    "triage",
    metadata,
    Column("alert", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("who", Text, nullable=False),
    Column("at", Text, nullable=False),
)
# Who holds each device's lease in a lab's store (leases.py); unused in SQLite.
_LEASES_DDL = (
    "CREATE TABLE leases (device TEXT PRIMARY KEY, holder TEXT NOT NULL, host TEXT NOT NULL, "
    "pid INTEGER NOT NULL, backend INTEGER NOT NULL, since TEXT NOT NULL)"
)
schema_version = Table("aibench_schema", metadata, Column("version", Integer, nullable=False))
# What takes a store of an older version to the next (a new store gets the tables whole).
_UPGRADES: dict[int, str | Table] = {
    2: "ALTER TABLE runs ADD COLUMN build TEXT",
    3: _LEASES_DDL,
    4: triage,
}
_UPGRADE_LOCK = 0x61696265  # the PostgreSQL advisory lock that serialises upgrades ("aibe")


def engine(location: Location) -> Engine:
    """An engine without a pool: a pytest run opens a store a few times, each briefly."""
    url = url_of(location)
    if url.startswith("sqlite"):
        made = create_engine(url, poolclass=NullPool, connect_args={"timeout": BUSY_TIMEOUT_S})
        _sqlite_transactions(made)
        return made
    try:
        import psycopg  # noqa: F401, PLC0415  (SQLAlchemy's error for it names no fix)
    except ImportError:
        raise ValueError(
            f"history store {shown(location)}: a PostgreSQL store needs psycopg: "
            "pip install 'pytest-aibench[lab]'"
        ) from None
    return create_engine(
        url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
    )


def _sqlite_transactions(made: Engine) -> None:
    """SQLAlchemy's documented recipe for the sqlite3 module's own transaction handling, which
    would otherwise begin late: we begin ourselves, taking the write lock first for a write."""

    @event.listens_for(made, "connect")
    def _connected(dbapi: Any, record: Any) -> None:
        dbapi.isolation_level = None
        dbapi.execute("PRAGMA foreign_keys = ON")

    @event.listens_for(made, "begin")
    def _begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get("aibench_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


@contextmanager
def connect(
    location: Location, *, create: bool = True, write: bool = False
) -> Iterator[Connection]:
    """An open store with the current schema in place; ``create=False`` refuses a store that
    does not exist yet (a missing SQLite file: a mistyped path, most likely)."""
    url = url_of(location)
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        if not create and not path.is_file():
            raise FileNotFoundError(
                f"no history database at {path} (runs are appended to it by "
                "pytest; --aibench-history names another)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    made = engine(location)
    try:
        with made.connect() as connection:
            _ensure_schema(connection, location)
            connection.execution_options(aibench_write=write)
            yield connection
    finally:
        made.dispose()


def connect_for_leases(location: Location) -> tuple[Engine, Connection]:
    """A connection of its own, in autocommit mode, for a process's advisory locks: they live
    as long as it does."""
    made = engine(location)
    connection = made.connect()
    try:
        _ensure_schema(connection, location)
    except BaseException:
        connection.close()
        made.dispose()
        raise
    return made, connection.execution_options(isolation_level="AUTOCOMMIT")


def _ensure_schema(connection: Connection, location: Location) -> None:
    version = _read_version(connection)
    if version == SCHEMA_VERSION:
        connection.rollback()  # end the reading transaction: the caller begins its own
        return
    connection.rollback()
    with connection.execution_options(aibench_write=True).begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
        version = _read_version(connection)  # again: another process may have upgraded it
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"{shown(location)} has history schema {version}; this pytest-aibench "
                f"knows {SCHEMA_VERSION}: upgrade pytest-aibench"
            )
        if version == 0:
            metadata.create_all(connection)
            connection.exec_driver_sql(_LEASES_DDL)
        for to in range(max(version, 1) + 1, SCHEMA_VERSION + 1) if version else ():
            step = _UPGRADES[to]
            if isinstance(step, Table):
                step.create(connection)
            else:
                connection.exec_driver_sql(step)
        _write_version(connection, SCHEMA_VERSION)


def _read_version(connection: Connection) -> int:
    if connection.dialect.name == "sqlite":
        return int(connection.exec_driver_sql("PRAGMA user_version").scalar_one())
    if not inspect(connection).has_table(schema_version.name):
        return 0
    return int(connection.execute(schema_version.select()).scalar_one_or_none() or 0)


def _write_version(connection: Connection, version: int) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
        return
    connection.execute(schema_version.delete())
    connection.execute(schema_version.insert().values(version=version))
