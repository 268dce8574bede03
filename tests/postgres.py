"""A real PostgreSQL server on 127.0.0.1 for the shared-store and lease tests: Debian's
``postgresql`` package (``.ci/run`` installs it), a fresh cluster in a temporary folder, trust
authentication on loopback, stopped at the end.

PostgreSQL refuses to run as root (CI's user): there the cluster belongs to the ``postgres``
user the Debian package creates, and its programs run through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER = "aibench"
_STOP: dict[str, list[str]] = {}  # a server's URL -> the command that stops it at once


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(versions[-1]).parent if versions else None


def _version(path: str) -> int:
    number = Path(path).parent.parent.name
    return int(number) if number.isdigit() else 0


def available() -> bool:
    if _bindir() is None:
        return False
    if os.geteuid() != 0:
        return True
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return shutil.which("runuser") is not None


def _as_owner() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server() -> Iterator[str]:
    """A running server; yields the URL of its (empty) database ``aibench``."""
    bindir = _bindir()
    assert bindir is not None, "no initdb: install Debian's postgresql package"
    # not under pytest's tmp_path: that is private to root, and the server may run as postgres
    folder = Path(tempfile.mkdtemp(prefix="aibench-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data, port = folder / "data", _free_port()
    pg_ctl = [*_as_owner(), str(bindir / "pg_ctl"), "-D", str(data)]
    initdb = [*_as_owner(), str(bindir / "initdb"), "-D", str(data), "-U", USER, "-A", "trust"]
    subprocess.run([*initdb, "--no-sync"], check=True, capture_output=True)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = str(folder / "log")
    subprocess.run(
        [*pg_ctl, "-o", options, "-l", log, "-w", "start"], check=True, capture_output=True
    )
    base = f"postgresql://{USER}@127.0.0.1:{port}"
    _STOP[f"{base}/aibench"] = [*pg_ctl, "-m", "immediate", "stop"]
    try:
        create_database(base, "aibench")
        yield f"{base}/aibench"
    finally:
        stop(f"{base}/aibench")
        shutil.rmtree(folder, ignore_errors=True)


def stop(url: str) -> None:
    """Stop the server of ``url`` at once, as a crash or a lost network would."""
    subprocess.run(_STOP[url], capture_output=True)


def create_database(base: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def fresh_database(url: str) -> str:
    """Another empty database on the server of ``url``: one per test, so tests never share."""
    base = url.rsplit("/", 1)[0]
    return create_database(base, f"t_{uuid.uuid4().hex[:12]}")
