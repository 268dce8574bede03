"""Real OpenSSH servers on 127.0.0.1 for the ssh device tests, each with its own keys."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def available() -> bool:
    return (
        Path(SSHD).exists()
        and shutil.which("ssh") is not None
        and shutil.which("ssh-keygen") is not None
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on {port}: {log.read_text()}")


@contextmanager
def servers(folder: Path, count: int) -> Iterator[tuple[list[str], str]]:
    """``count`` sshd on loopback; yields their device URLs and the ssh options to reach them."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "client")], check=True
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation
    processes, urls = [], []
    try:
        for index in range(count):
            port, key = _free_port(), folder / f"host{index}"
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
            config = folder / f"sshd{index}.conf"
            config.write_text(
                f"Port {port}\nListenAddress 127.0.0.1\nHostKey {key}\n"
                f"AuthorizedKeysFile {folder}/client.pub\nPidFile {folder}/sshd{index}.pid\n"
                "UsePAM no\nStrictModes no\nPermitRootLogin yes\nPasswordAuthentication no\n"
                "MaxStartups 100\nMaxSessions 100\n"
            )
            log = folder / f"sshd{index}.log"
            with log.open("w") as out:  # the daemon holds its own copy of the descriptor
                process = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
                )
            processes.append(process)
            _wait_for(port, process, log)
            urls.append(f"ssh://{getpass.getuser()}@127.0.0.1:{port}")
        options = (
            f"-i {folder}/client -o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
        )
        yield urls, options
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
