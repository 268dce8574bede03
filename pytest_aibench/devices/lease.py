"""Leases: no device ever runs two items at once, across xdist workers, pytest runs and users.

Without a shared store, a lease is an exclusive file lock (the ``filelock`` package) on
``<lease dir>/<device id>.lock``; the kernel releases it when its holder exits, even by a
crash. The lease folder is shared by every user of the machine (a phone on a lab host is one
phone whoever runs pytest): it is made world-writable with the sticky bit, as ``/tmp`` is, and
lock files are made 0666, so a second user's run waits for the first one's lease instead of
failing on a file it may not open. While a run waits, it says for what and who holds it
(``holder`` files beside the locks).

With the history store on a PostgreSQL server (a lab's), leases are the lab's: see
store/leases.py.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ..atomic import write_text
from ..errors import DeviceError
from ..names import path_component
from ..store.location import Location, is_server
from ..store.location import problem as store_problem
from .base import DeviceInfo

DEFAULT_LEASES = Path(tempfile.gettempdir()) / "pytest-aibench-leases"
Notify = Callable[[str], None]
_SAID: set[str] = set()


def lease_folder(folder: Path) -> Path:
    """``folder``, made shareable if we make it; a usage error naming the fix if it is not.
    A link in its place that another user made (not root) is refused: it would send this
    user's lock files wherever that user chose."""
    if folder.is_symlink() and folder.lstat().st_uid not in (0, os.getuid()):
        raise _planted(folder, f"it is a link made by uid {folder.lstat().st_uid}")
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
    mode = folder.stat().st_mode
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:  # anyone could delete a held lock file
        raise DeviceError(
            f"the lease folder {folder} is writable by every user without the sticky bit "
            f"({stat.filemode(mode)}), so anyone could delete a held lock: its owner can fix "
            f"it with 'chmod 1777 {folder}'"
        )
    return folder


def default_lease_folder() -> Path:
    """$AIBENCH_LEASE_DIR (as ``--aibench-lease-dir`` reads it), else the machine's shared
    folder: so that a build of ``aibench commits --same-host`` waits where the runs do."""
    return Path(os.environ.get("AIBENCH_LEASE_DIR") or DEFAULT_LEASES)


@contextlib.contextmanager
def lease(info: DeviceInfo, folder: Path | None = None) -> Iterator[None]:
    """Hold one device for the block."""
    with lease_any([info], folder or default_lease_folder()):
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
    With a ``store`` on a server, the leases are the lab's (``store.leases.StoreLeases``)."""
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
    other hosts are not protected meanwhile (the run itself is spooled, see publish.py). So
    does a store lost in the middle of the run (:class:`UntilTheStoreFails`)."""
    if isinstance(store, str) and is_server(store):
        from ..store.leases import StoreLeases, unreachable  # noqa: PLC0415  (SQLAlchemy)

        leases = StoreLeases(store)
        problem = unreachable(leases)
        if problem is None:
            return UntilTheStoreFails(leases, folder, notify)
        _say_once(notify, f"the lab's store cannot be reached for leases ({problem})")
    return FileLeases(folder)


def _say_once(notify: Notify | None, why: str) -> None:
    said = (
        f"aibench: {why}: this host's lock files are used, which do not keep other hosts' "
        "jobs off a shared device"
    )
    if notify is not None and said not in _SAID:  # once per process, not per item
        _SAID.add(said)
        notify(said)


class UntilTheStoreFails:
    """The lab's leases while its store answers; this host's lock files from the first time
    it does not (said once): a store lost in the middle of an item costs no item. A lease the
    store held when it went is free already: the server drops a lost session's locks."""

    def __init__(self, store: Leases, folder: Path, notify: Notify | None) -> None:
        self.store, self.folder, self.notify = store, folder, notify
        self.files: FileLeases | None = None
        self.poll_s = store.poll_s
        self._in_store: set[str] = set()  # devices whose lease the store holds

    def take(self, info: DeviceInfo) -> bool:
        if self.files is None:
            try:
                taken = self.store.take(info)
            except Exception as exc:  # the server went away: a DBAPI or socket error
                self._fall_back(exc)
            else:
                if taken:
                    self._in_store.add(info.id)
                return taken
        return self._files().take(info)

    def give_back(self, info: DeviceInfo) -> None:
        if info.id not in self._in_store:
            self._files().give_back(info)
            return
        self._in_store.discard(info.id)
        if self.files is None:
            try:
                self.store.give_back(info)
            except Exception as exc:
                self._fall_back(exc)

    def holder(self, info: DeviceInfo) -> str:
        if self.files is None:
            try:
                return self.store.holder(info)
            except Exception as exc:
                self._fall_back(exc)
        return self._files().holder(info)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a store that is gone has nothing to close
            self.store.close()
        if self.files is not None:
            self.files.close()

    def _files(self) -> FileLeases:
        assert self.files is not None, "file leases are used only once the store failed"
        return self.files

    def _fall_back(self, exc: Exception) -> None:
        _say_once(
            self.notify, f"the lab's store stopped answering for leases ({store_problem(exc)})"
        )
        self.files = FileLeases(self.folder)
        self.poll_s = FileLeases.poll_s
        with contextlib.suppress(Exception):
            self.store.close()


def _busy(leases: Leases, candidates: Sequence[DeviceInfo]) -> str:
    return ", ".join(
        f"{info.id}{', ' + held if (held := leases.holder(info)) else ''}" for info in candidates
    )


class FileLeases:
    """An exclusive ``flock`` per device on ``<lease dir>/<device>.lock``: the kernel frees it
    when its holder exits, even by a crash.

    The folder is shared with every user of the machine, so nothing found in it is trusted: a
    lock file is opened read-only, never through a link, never created over a file already
    there, and must be a plain file; holder notes live in a folder of each user's own
    (:class:`NoteFolder`). A planted link, FIFO or foreign folder is a :class:`DeviceError`
    naming it. Not ``filelock``: it opens its lock file for writing, follows links and
    truncates, which in a shared folder writes through whatever a neighbour planted."""

    poll_s = 0.05

    def __init__(self, folder: Path) -> None:
        self.folder = lease_folder(folder)
        self._held: dict[str, int] = {}  # device id -> the locked file's descriptor
        self._notes: NoteFolder | None = None

    def take(self, info: DeviceInfo) -> bool:
        descriptor = open_lock_file(self.folder / f"{_file_name(info)}.lock")
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._held[info.id] = descriptor
        try:
            if self._notes is None:
                self._notes = NoteFolder(self.folder)
            self._notes.write(info)
        except BaseException:
            self.give_back(info)
            raise
        return True

    def give_back(self, info: DeviceInfo) -> None:
        if self._notes is not None:
            self._notes.remove(info)
        os.close(self._held.pop(info.id))  # its only descriptor: closing it frees the lock

    def holder(self, info: DeviceInfo) -> str:
        return _holder(self.folder, info)

    def close(self) -> None:
        for device_id in list(self._held):
            os.close(self._held.pop(device_id))
        if self._notes is not None:
            self._notes.close()
            self._notes = None


# Never follow a link, never block on a FIFO a neighbour planted, never leak into children.
_SAFE_OPEN = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_lock_file(path: Path) -> int:
    """A read-only descriptor of the lock file at ``path`` (made if missing): ``flock`` needs
    no write access, so nothing is ever written through it."""
    while True:
        try:
            descriptor = os.open(path, os.O_RDONLY | _SAFE_OPEN)
        except FileNotFoundError:
            try:  # O_EXCL: a file that appeared meanwhile is opened as found, on the next turn
                made = os.O_RDONLY | os.O_CREAT | os.O_EXCL | _SAFE_OPEN
                descriptor = os.open(path, made, 0o444)
                os.fchmod(descriptor, 0o444)  # the umask must not hide it from other users
            except FileExistsError:
                continue
        except OSError as exc:
            raise _planted(path, exc) from None
        return _checked(descriptor, path, want=stat.S_ISREG, what="a plain lock file")


def _checked(descriptor: int, path: Path, *, want: Callable[[int], bool], what: str) -> int:
    found = os.fstat(descriptor)
    if want(found.st_mode) and found.st_nlink == 1:  # a hard link is a planted name too
        return descriptor
    os.close(descriptor)
    kind = f"{stat.filemode(found.st_mode)} with {found.st_nlink} names"
    raise _planted(path, f"it is {kind} (owner uid {found.st_uid}), not {what}")


def _planted(path: Path, problem: object) -> DeviceError:
    if isinstance(problem, OSError) and (problem.errno == errno.ELOOP or path.is_symlink()):
        problem = "it is a symbolic link"
    elif isinstance(problem, OSError):
        problem = problem.strerror or problem
    return DeviceError(
        f"the lease folder holds {path}, which pytest-aibench will not use: {problem}. "
        "Someone may have planted it: its owner (or root) can remove it, or pass "
        "--aibench-lease-dir DIR (every run that shares devices must name the same)"
    )


class NoteFolder:
    """``<lease dir>/holders-<uid>``: who holds which lease, for the messages of those who
    wait. This user's own folder (checked: a real folder, owned by this user, writable by
    nobody else), held open and written through its descriptor, so that a neighbour who
    renames or replaces it meanwhile cannot redirect a note."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"holders-{os.getuid()}"
        with contextlib.suppress(FileExistsError):
            os.mkdir(self.path, 0o755)
        try:
            descriptor = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | _SAFE_OPEN)
        except OSError as exc:
            raise _planted(self.path, exc) from None
        found = os.fstat(descriptor)
        if found.st_uid != os.getuid() or found.st_mode & 0o022:
            os.close(descriptor)
            raise _planted(
                self.path,
                f"it is {stat.filemode(found.st_mode)} and owned by uid {found.st_uid}, "
                f"not a folder only uid {os.getuid()} writes",
            )
        self.descriptor = descriptor

    def write(self, info: DeviceInfo) -> None:
        note = {"pid": os.getpid(), "since": time.time()}
        write_text(self._through_descriptor(info), json.dumps(note))

    def remove(self, info: DeviceInfo) -> None:
        with contextlib.suppress(OSError):
            os.unlink(f"{_file_name(info)}.json", dir_fd=self.descriptor)

    def close(self) -> None:
        os.close(self.descriptor)

    def _through_descriptor(self, info: DeviceInfo) -> Path:
        """The note's path through the held folder (Linux's ``/proc/self/fd``), else by name."""
        held = Path(f"/proc/self/fd/{self.descriptor}")
        return (held if held.is_dir() else self.path) / f"{_file_name(info)}.json"


def _file_name(info: DeviceInfo) -> str:
    return path_component(info.id, "device id")


NOTE_LIMIT = 4096  # bytes: a note is a pid and a time


def _holder(folder: Path, info: DeviceInfo) -> str:
    """``held by pid 1234 since 12:03:11``, from the newest note of a live holder; else ''.
    Notes are read as untrusted: no link followed, no more than a note's size read."""
    notes = []
    for path in folder.glob(f"holders-*/{_file_name(info)}.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, DeviceError):
            descriptor = _checked(
                os.open(path, os.O_RDONLY | _SAFE_OPEN), path, want=stat.S_ISREG, what="a note"
            )
            with os.fdopen(descriptor, "rb") as handle:
                data = json.loads(handle.read(NOTE_LIMIT))
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
