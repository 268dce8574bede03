"""Leases: no device ever runs two items at once, across xdist workers, pytest runs and users.

Without a shared store, a lease is an exclusive file lock (the ``filelock`` package) on
``<lease dir>/<device id>.lock``; the kernel releases it when its holder exits, even by a
crash. The lease folder is shared by every user of the machine (a phone on a lab host is one
phone whoever runs pytest): it is made world-writable with the sticky bit, as ``/tmp`` is, and
lock files are made 0666, so a second user's run waits for the first one's lease instead of
failing on a file it may not open. While a run waits, it says for what and who holds it
(``holder`` files beside the locks).

With the history store on a PostgreSQL server (a lab's), leases are the lab's: see
devices/store_lease.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import DeviceError
from ..names import path_component
from .base import DeviceInfo

if TYPE_CHECKING:
    from ..reporting.store import Location

DEFAULT_LEASES = Path(tempfile.gettempdir()) / "pytest-aibench-leases"
Notify = Callable[[str], None]
_SAID: set[str] = set()


def lease_folder(folder: Path) -> Path:
    """``folder``, made shareable if we make it; a usage error naming the fix if it is not."""
    if not folder.is_dir():
        with contextlib.suppress(FileExistsError):
            folder.mkdir(parents=True)
            folder.chmod(0o1777)  # mkdir's mode is cut by the umask; chmod's is not
    if not os.access(folder, os.W_OK | os.X_OK):
        info = folder.stat()
        raise DeviceError(
            f"the lease folder {folder} is not writable by you (owner uid {info.st_uid}, mode "
            f"{stat.filemode(info.st_mode)}): its owner can share it with 'chmod 1777 {folder}', "
            "or pass --aibench-lease-dir DIR (every run that shares devices must name the same)"
        )
    return folder


@contextlib.contextmanager
def lease(info: DeviceInfo, folder: Path = DEFAULT_LEASES) -> Iterator[None]:
    """Hold one device for the block."""
    with lease_any([info], folder):
        yield


class Leases(Protocol):
    """Where leases are kept: file locks on this host, or the lab's PostgreSQL store."""

    poll_s: float  # how often a waiter asks again

    def take(self, info: DeviceInfo) -> bool:
        """Take the device's lease if it is free, without waiting."""

    def give_back(self, info: DeviceInfo) -> None: ...

    def holder(self, info: DeviceInfo) -> str:
        """``held by ... since 12:03:11``, or '' where nobody alive holds it."""

    def close(self) -> None: ...


@contextlib.contextmanager
def lease_any(
    candidates: Sequence[DeviceInfo],
    folder: Path = DEFAULT_LEASES,
    *,
    timeout: float | None = None,
    notify: Notify | None = None,
    store: Location | None = None,
) -> Iterator[DeviceInfo]:
    """Hold the first of ``candidates`` that is free (``--aibench-fleet pool``), waiting while
    all are busy: said once through ``notify``, and a :class:`DeviceError` after ``timeout``.
    With a ``store`` on a server, the leases are the lab's (``store_lease.StoreLeases``)."""
    leases = leases_for(folder, store, notify)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            for info in candidates:
                if not leases.take(info):
                    continue
                try:
                    yield info
                finally:
                    leases.give_back(info)
                return
            if not told and notify is not None:
                notify(f"aibench: waiting for {_busy(leases, candidates)}")
                told = True
            if deadline is not None and time.monotonic() >= deadline:
                raise DeviceError(
                    f"no device was free within --aibench-lease-timeout={timeout:g} s: "
                    f"{_busy(leases, candidates)}"
                )
            time.sleep(leases.poll_s)
    finally:
        leases.close()


def leases_for(folder: Path, store: Location | None, notify: Notify | None = None) -> Leases:
    """The lab's leases where the history store is a server, else this host's file locks (a
    store that is a file is this host's; SQLAlchemy is imported only for a server).

    A lab store out of reach costs no run: the leases fall back to this host's lock files,
    which still keep this host's jobs apart, and ``notify`` says that devices shared with
    other hosts are not protected meanwhile (the run itself is spooled, see publish.py)."""
    if isinstance(store, str):
        from ..reporting.store import is_server

        if is_server(store):
            from .store_lease import StoreLeases, unreachable

            leases = StoreLeases(store)
            problem = unreachable(leases)
            if problem is None:
                return leases
            said = (
                f"aibench: the lab's store cannot be reached for leases ({problem}): "
                "this host's lock files are used, which do not keep other hosts' jobs "
                "off a shared device"
            )
            if notify is not None and said not in _SAID:  # once per process, not per item
                _SAID.add(said)
                notify(said)
    return FileLeases(folder)


def _busy(leases: Leases, candidates: Sequence[DeviceInfo]) -> str:
    return ", ".join(
        f"{info.id}{', ' + held if (held := leases.holder(info)) else ''}" for info in candidates
    )


class FileLeases:
    """An exclusive file lock (``filelock``) per device in the lease folder: the kernel frees
    it when its holder exits, even by a crash."""

    poll_s = 0.05

    def __init__(self, folder: Path) -> None:
        self.folder = lease_folder(folder)
        self._locks: dict[str, Any] = {}
        self._notes: dict[str, contextlib.ExitStack] = {}

    def take(self, info: DeviceInfo) -> bool:
        from filelock import FileLock, Timeout

        lock = self._locks.setdefault(
            info.id, FileLock(self.folder / f"{_file_name(info)}.lock", mode=0o666)
        )
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        self._notes[info.id] = note = contextlib.ExitStack()
        note.enter_context(_holding(self.folder, info))
        return True

    def give_back(self, info: DeviceInfo) -> None:
        self._notes.pop(info.id).close()
        self._locks[info.id].release()

    def holder(self, info: DeviceInfo) -> str:
        return _holder(self.folder, info)

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _holding(folder: Path, info: DeviceInfo) -> Iterator[None]:
    """A note of who holds the lease, for the messages of those who wait (one file per user, as
    a sticky folder lets no user replace another's)."""
    note = folder / f"{_file_name(info)}.holder-{os.getuid()}"
    with contextlib.suppress(OSError):
        note.write_text(json.dumps({"pid": os.getpid(), "since": time.time()}), "utf-8")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            note.unlink()


def _file_name(info: DeviceInfo) -> str:
    return path_component(info.id, "device id")


def _holder(folder: Path, info: DeviceInfo) -> str:
    """``held by pid 1234 since 12:03:11``, from the newest note of a live holder; else ''."""
    notes = []
    for path in folder.glob(f"{_file_name(info)}.holder-*"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(path.read_text("utf-8"))
            notes.append((float(data["since"]), int(data["pid"])))
    for since, pid in sorted(notes, reverse=True):
        if _alive(pid):
            return f"held by pid {pid} since {datetime.fromtimestamp(since):%H:%M:%S}"
    return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    return True
