"""The lab's leases, in its PostgreSQL store: no two CI jobs anywhere run on one device at once.

A lease is a PostgreSQL session-level advisory lock on a number made from the device id. The
server holds it for as long as the holder's connection lives and frees it when that connection
ends, whatever ended it: a release, an exit, a SIGKILL (the kernel closes the socket), or a lab
host that lost power or network (the server's TCP keepalives, set short for lease sessions,
find the dead peer within about a minute). So no lease outlives its holder, and there is no
expiry to tune.

Beside each lock, a row of the ``leases`` table says who holds it (the CI job, the host, the
pid, since when), for the messages of those who wait and for ``aibench devices``. The lock is
the truth: a row whose holder's session no longer holds the lock is stale and is shown as free.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
from datetime import datetime, timezone
from typing import Protocol

from sqlalchemy import Connection, Engine, text

from .location import Location, problem
from .schema import connect_for_leases

# A lease session's keepalives: a holder that vanished without closing its connection is
# found dead after idle + interval * count seconds.
KEEPALIVES = {"tcp_keepalives_idle": 20, "tcp_keepalives_interval": 10, "tcp_keepalives_count": 3}
CI_JOB_VARIABLES = ("AIBENCH_HOLDER", "CI_JOB_ID", "GITHUB_RUN_ID", "BUILD_TAG", "BUILD_NUMBER")


class Leased(Protocol):
    """What a lease is keyed by: a device's id (devices.base.DeviceInfo has one)."""

    @property
    def id(self) -> str: ...


def lock_key(device_id: str) -> int:
    """A signed 64-bit number for ``pg_advisory_lock``, the same in every process."""
    digest = hashlib.sha256(f"pytest-aibench lease {device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def holder_label() -> str:
    """Who holds a lease, as the waiters read it: the CI job where there is one."""
    for name in CI_JOB_VARIABLES:
        if value := os.environ.get(name):
            return value if name == "AIBENCH_HOLDER" else f"ci-job {value}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user} pid {os.getpid()}"


def unreachable(leases: StoreLeases) -> str | None:
    """Why the store cannot hold leases now (its one-line error), or ``None`` if it can."""
    try:
        leases.open()
    except Exception as exc:  # refused, timed out, no psycopg, a newer schema
        return problem(exc)
    return None


class StoreLeases:
    """Leases held by one connection to the store, opened on the first use."""

    poll_s = 0.5  # how often a waiter asks the server again

    def __init__(self, location: Location) -> None:
        self.location = location
        self._engine: Engine | None = None
        self._connection: Connection | None = None

    def open(self) -> Connection:
        """The session that holds this process's locks, opened once."""
        if self._connection is None:
            self._engine, self._connection = connect_for_leases(self.location)
            for name, seconds in KEEPALIVES.items():
                self._connection.execute(text(f"SET {name} = {int(seconds)}"))
        return self._connection

    def take(self, info: Leased) -> bool:
        db = self.open()
        key = lock_key(info.id)
        if not db.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one():
            return False
        db.execute(
            text(
                "INSERT INTO leases (device, holder, host, pid, backend, since) VALUES "
                "(:device, :holder, :host, :pid, pg_backend_pid(), :since) ON CONFLICT (device)"
                " DO UPDATE SET holder = excluded.holder, host = excluded.host, "
                "pid = excluded.pid, backend = excluded.backend, since = excluded.since"
            ),
            {
                "device": info.id,
                "holder": holder_label(),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )
        return True

    def give_back(self, info: Leased) -> None:
        db = self.open()
        db.execute(
            text("DELETE FROM leases WHERE device = :device AND backend = pg_backend_pid()"),
            {"device": info.id},
        )
        db.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(info.id)})

    def holder(self, info: Leased) -> str:
        """``held by ci-job 4711 on lab1 since 12:03:11`` while a live session holds the lock."""
        row = (
            self.open()
            .execute(
                text(
                    "SELECT holder, host, since FROM leases WHERE device = :device AND EXISTS ("
                    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                    "pid = leases.backend AND objsubid = 1 AND "
                    "((classid::bigint << 32) | objid::bigint) = :key)"  # the lock's two halves
                ),
                {"device": info.id, "key": lock_key(info.id)},
            )
            .first()
        )
        if row is None:
            return ""
        holder, host, since = row
        when = datetime.fromisoformat(since).astimezone().strftime("%H:%M:%S")
        return f"held by {holder} on {host} since {when}"

    def close(self) -> None:
        """Ends the session, which frees every lock it still holds."""
        if self._connection is not None and self._engine is not None:
            self._connection.close()
            self._engine.dispose()
            self._connection = self._engine = None
