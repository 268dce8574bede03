"""The shared lease folder against a neighbour: planted links, FIFOs, hard links and foreign
folders are refused by name, nothing is written through them, and two users still never share
a device."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_aibench.devices.base import DeviceInfo
from pytest_aibench.devices.lease import lease, lease_any
from pytest_aibench.errors import DeviceError

BOARD = DeviceInfo("ssh", "board", "b", "ssh://b", "x", "y")
VICTIM_TEXT = "the victim's own file\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file a neighbour would like us to overwrite."""
    path = tmp_path / "victim.txt"
    path.write_text(VICTIM_TEXT)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "leases"
    path.mkdir(mode=0o755)
    path.chmod(0o1777)
    return path


def test_a_planted_lock_link_is_refused_by_name_and_never_written_through(
    folder: Path, victim: Path
) -> None:
    (folder / "board.lock").symlink_to(victim)
    with pytest.raises(DeviceError) as refused, lease(BOARD, folder):
        pass
    message = str(refused.value)
    assert f"{folder / 'board.lock'}, which pytest-aibench will not use" in message
    assert "symbolic link" in message and "--aibench-lease-dir" in message
    assert victim.read_text() == VICTIM_TEXT


def test_a_planted_holder_folder_link_is_refused_and_the_lease_is_given_back(
    folder: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / f"holders-{os.getuid()}").symlink_to(elsewhere)
    with pytest.raises(DeviceError, match=r"holders-.*symbolic link"), lease(BOARD, folder):
        pass
    assert list(elsewhere.iterdir()) == []  # no note written through the link
    with lease_any([BOARD], tmp_path / "other", timeout=0):  # and nothing stays locked
        pass


@pytest.mark.parametrize("kind", ["fifo", "folder", "hard link"])
def test_a_lock_name_that_is_no_plain_file_is_refused(
    folder: Path, victim: Path, kind: str
) -> None:
    lock = folder / "board.lock"
    if kind == "fifo":
        os.mkfifo(lock)  # opened for reading, a FIFO would block the run forever
    elif kind == "folder":
        lock.mkdir()
    else:
        os.link(victim, lock)
    with (
        pytest.raises(DeviceError, match="which pytest-aibench will not use"),
        lease(BOARD, folder),
    ):
        pass
    assert victim.read_text() == VICTIM_TEXT


def test_a_lease_folder_writable_by_all_without_the_sticky_bit_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o777)
    with (
        pytest.raises(DeviceError, match=r"without the sticky bit.*chmod 1777"),
        lease(BOARD, folder),
    ):
        pass


def test_notes_live_in_a_folder_of_the_users_own(folder: Path) -> None:
    with lease(BOARD, folder):
        notes = folder / f"holders-{os.getuid()}"
        assert [p.name for p in notes.iterdir()] == ["board.json"]
        assert notes.stat().st_mode & 0o022 == 0  # nobody else writes there
        assert oct((folder / "board.lock").stat().st_mode & 0o777) == "0o444"  # read-only
    assert list(notes.iterdir()) == []


# -- a second user: these run a command as the user nobody ---------------------------------------

as_another_user = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run as a second user",
)


LEASE_PRELUDE = (
    "from pathlib import Path\n"
    "from pytest_aibench.devices.base import DeviceInfo\n"
    "from pytest_aibench.devices.lease import lease, lease_any\n"
    "from pytest_aibench.errors import DeviceError\n"
    "info = DeviceInfo('ssh', 'board', 'b', 'ssh://b', 'x', 'y')\n"
)


def as_nobody(code: str, package: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as the user nobody; with ``package`` (a copy that user can read: the
    checkout may sit in a private home folder), the lease helpers are in scope."""
    if package is not None:
        code = f"import sys; sys.path[:0] = {[str(package), *sys.path]!r}\n{LEASE_PRELUDE}{code}"
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
    return subprocess.run([*argv, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.fixture
def readable_package() -> Iterator[Path]:
    """A copy of the package in a folder every user can read; a skip where the user nobody
    cannot run this Python at all (a virtual environment in a private home folder)."""
    reached = as_nobody("pass")
    if reached.returncode != 0:
        pytest.skip(f"the user nobody cannot run {sys.executable}: {reached.stderr.strip()}")
    outside = Path(tempfile.mkdtemp(prefix="aibench-pkg-"))
    outside.chmod(0o755)
    source = Path(__file__).resolve().parents[1] / "pytest_aibench"
    shutil.copytree(source, outside / "pytest_aibench", ignore=shutil.ignore_patterns("*.pyc"))
    for path in outside.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield outside
    shutil.rmtree(outside)


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder both users reach (pytest's own temporary folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="aibench-shared-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@as_another_user
def test_a_link_another_user_plants_under_our_holder_name_writes_nothing(
    readable_package: Path, shared: Path
) -> None:
    folder, victim = shared / "leases", shared / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    with lease(BOARD, folder):  # we make the shared folder, as a first run does
        pass
    shutil.rmtree(folder / f"holders-{os.getuid()}")
    planted = as_nobody(
        f"Path({str(folder / f'holders-{os.getuid()}')!r}).symlink_to({str(shared)!r})\n"
        f"Path({str(folder / 'phone.lock')!r}).symlink_to({str(victim)!r})\n",
        readable_package,
    )
    assert planted.returncode == 0, planted.stderr
    refused = pytest.raises(DeviceError, match="holders-0, which pytest-aibench will not use")
    with refused, lease(BOARD, folder):
        pass
    phone = DeviceInfo("ssh", "phone", "p", "ssh://p", "x", "y")
    with pytest.raises(DeviceError, match=r"phone\.lock.*symbolic link"), lease(phone, folder):
        pass
    assert victim.read_text() == VICTIM_TEXT
    assert sorted(p.name for p in shared.iterdir()) == ["leases", "victim.txt"]


@as_another_user
def test_a_second_user_waits_for_the_first_users_lease(
    readable_package: Path, shared: Path
) -> None:
    folder = shared / "leases"
    with lease(BOARD, folder):  # held by us (root): nobody must not get it
        taken = as_nobody(
            "try:\n"
            f"    with lease_any([info], Path({str(folder)!r}), timeout=0.3):\n"
            "        print('leased')\n"
            "except DeviceError as exc:\n    print(exc)\n",
            readable_package,
        )
    assert "no device was free within" in taken.stdout, taken
    assert "held by pid" in taken.stdout
    freed = as_nobody(
        f"with lease(info, Path({str(folder)!r})):\n    print('leased')\n",
        readable_package,
    )
    assert freed.stdout.strip() == "leased", freed.stderr


@as_another_user
def test_a_lease_folder_another_user_cannot_write_is_a_clear_error(
    readable_package: Path, shared: Path
) -> None:
    folder = shared / "leases"
    folder.mkdir(mode=0o755)  # as an older version made it: the first user's alone
    done = as_nobody(
        "try:\n"
        f"    with lease(info, Path({str(folder)!r})):\n        print('leased')\n"
        "except DeviceError as exc:\n    print(exc)\n",
        readable_package,
    )
    assert "is not writable by you" in done.stdout and "chmod 1777" in done.stdout, done
