"""A small Android device daemon for tests: it speaks the ADB transport protocol (CNXN, OPEN,
OKAY, WRTE, CLSE; services shell, shell v2 and sync) on loopback, so a real adb server (the one
adbutils ships) can connect to it. Its file system is a folder on the host, its shell is the
host's ``sh`` with device paths mapped into that folder, and ``getprop`` answers from a dict."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from pytest_aibench.atomic import write_text


def _command(name: bytes) -> int:
    return int.from_bytes(name, "little")


CNXN, OPEN, OKAY, CLSE, WRTE = (_command(n) for n in (b"CNXN", b"OPEN", b"OKAY", b"CLSE", b"WRTE"))
VERSION, MAX_DATA = 0x01000001, 256 * 1024
PROPERTIES = {
    "ro.product.model": "FeasPhone",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.name": "feas",
    "ro.product.device": "feas",
    "sys.boot_completed": "1",
}


# Android's ``toybox time -v``: reports the child's wait4 usage to stderr in its own words,
# ``Max RSS (KiB): N`` among them, and exits with the child's status. Other toybox commands
# are not faked.
TOYBOX = """#!/usr/bin/env python3
import os, sys, time
if sys.argv[1:2] != ["time"]:
    sys.exit("toybox: only time is faked here")
args = [a for a in sys.argv[2:] if a != "-v"]
start = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(args[0], args)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(
    "Real time (s): %f\\nSystem time (s): %f\\nUser time (s): %f\\nMax RSS (KiB): %d\\n"
    "Major faults: %d\\nMinor faults: %d\\nFile system inputs: %d\\n"
    "File system outputs: %d\\nVoluntary context switches: %d\\n"
    "Involuntary context switches: %d\\n" % (
        time.monotonic() - start, usage.ru_stime, usage.ru_utime, usage.ru_maxrss,
        usage.ru_majflt, usage.ru_minflt, usage.ru_inblock, usage.ru_oublock,
        usage.ru_nvcsw, usage.ru_nivcsw))
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"""


class FakeAdbd:
    def __init__(self, root: Path, properties: dict[str, str] | None = None) -> None:
        self.root = root
        self.properties = {**PROPERTIES, **(properties or {})}
        (root / "data/local/tmp").mkdir(parents=True, exist_ok=True)
        self._bin = root / ".bin"
        self._bin.mkdir(exist_ok=True)
        getprop = self._bin / "getprop"
        getprop.write_text(
            "#!/bin/sh\nexec python3 -c 'import json,sys; p=json.load(open("
            f'"{root}/.props")); print(p.get(sys.argv[1], ""))\' "$1"\n'
        )
        getprop.chmod(0o755)
        (root / ".props").write_text(json.dumps(self.properties))
        self.battery = {"level": 87, "temperature": 312}  # dumpsys reports tenths of a degree
        self._script("dumpsys", f'#!/bin/sh\n[ "$1" = battery ] || exit 1\ncat {root}/.battery\n')
        self._script(
            "logcat",
            f'#!/bin/sh\nif [ "$1" = -c ]; then : > {root}/.logcat; '
            f"else cat {root}/.logcat 2>/dev/null; fi\n",
        )
        self._script("log", f'#!/bin/sh\necho "I native: $*" >> {root}/.logcat\n')
        self._script("toybox", TOYBOX)
        self.set_battery()
        self.port = 0
        self.reboots = 0
        self._connections: list[socket.socket] = []
        self._listen()

    def _listen(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _set_prop(self, name: str, value: str) -> None:
        self.properties[name] = value
        write_text(self.root / ".props", json.dumps(self.properties))  # getprop may be reading

    def reboot(self, down: float = 0.5, booting: float = 0.5) -> None:
        """Go away, come back on the same port, report boot completed a little later."""
        self.reboots += 1
        self._set_prop("sys.boot_completed", "0")
        self.stop()
        time.sleep(down)
        self._listen()
        time.sleep(booting)
        self._set_prop("sys.boot_completed", "1")

    def _script(self, name: str, text: str) -> None:
        path = self._bin / name
        path.write_text(text)
        path.chmod(0o755)

    def set_battery(self, level: int | None = None, temperature: int | None = None) -> None:
        self.battery.update(
            {k: v for k, v in (("level", level), ("temperature", temperature)) if v is not None}
        )
        # replaced, not rewritten in place: a `dumpsys battery` reading meanwhile sees the old
        # state or the new one, never the empty file a rewrite shows for a moment
        write_text(
            self.root / ".battery",
            "Current Battery Service state:\n  AC powered: false\n  USB powered: true\n"
            f"  level: {self.battery['level']}\n  scale: 100\n"
            f"  temperature: {self.battery['temperature']}\n",
        )

    def local(self, device_path: str) -> str:
        return str(self.root) + device_path if device_path.startswith("/") else device_path

    def stop(self) -> None:
        # shutdown first: close alone leaves a thread blocked in accept() accepting still
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            # small packets at once, as a phone's USB link carries them: with Nagle's rule a
            # reply waits 40 ms for the delayed ACK of the packet before it
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._connections.append(connection)
            threading.Thread(target=_Transport(self, connection).serve, daemon=True).start()


class _Transport:
    def __init__(self, daemon: FakeAdbd, sock: socket.socket) -> None:
        self.daemon, self.sock = daemon, sock
        self.lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        header = struct.pack(
            "<6I", command, arg0, arg1, len(data), sum(data) & 0xFFFFFFFF, command ^ 0xFFFFFFFF
        )
        with self.lock:
            self.sock.sendall(header + data)

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def serve(self) -> None:
        try:
            while True:
                command, arg0, arg1, length, _, _ = struct.unpack("<6I", self._read(24))
                self.handle(command, arg0, arg1, self._read(length) if length else b"")
        except (ConnectionError, OSError):
            return

    def handle(self, command: int, arg0: int, arg1: int, data: bytes) -> None:
        if command == CNXN:
            props = ";".join(
                f"{k}={self.daemon.properties[k]}"
                for k in ("ro.product.name", "ro.product.model", "ro.product.device")
            )
            self.send(CNXN, VERSION, MAX_DATA, f"device::{props};features=shell_v2,cmd".encode())
        elif command == OPEN:
            local = self.next_id
            self.next_id += 1
            stream = _Stream(self, local, arg0, data.rstrip(b"\0").decode())
            self.streams[local] = stream
            self.send(OKAY, local, arg0)
            threading.Thread(target=stream.start, daemon=True).start()
        elif command == OKAY and arg1 in self.streams:
            self.streams[arg1].acked.set()
        elif command == WRTE and arg1 in self.streams:
            self.send(OKAY, arg1, arg0)
            self.streams[arg1].received(data)
        elif command == CLSE and arg1 in self.streams:
            self.streams.pop(arg1).closed()


class _Stream:
    def __init__(self, transport: _Transport, local: int, remote: int, service: str) -> None:
        self.transport, self.local, self.remote, self.service = transport, local, remote, service
        self.acked = threading.Event()
        self.inbox: list[bytes] = []
        self.arrived = threading.Condition()
        self.done = False

    def write(self, data: bytes) -> None:
        for start in range(0, len(data), MAX_DATA):
            self.acked.clear()
            self.transport.send(WRTE, self.local, self.remote, data[start : start + MAX_DATA])
            self.acked.wait(10)

    def close(self) -> None:
        self.transport.send(CLSE, self.local, self.remote)

    def received(self, data: bytes) -> None:
        with self.arrived:
            self.inbox.append(data)
            self.arrived.notify()

    def closed(self) -> None:
        with self.arrived:
            self.done = True
            self.arrived.notify()

    def read(self, size: int) -> bytes:
        buffer = b""
        with self.arrived:
            while len(buffer) < size:
                while not self.inbox and not self.done:
                    self.arrived.wait()
                if not self.inbox:
                    raise ConnectionError
                buffer += self.inbox.pop(0)
            if len(buffer) > size:
                self.inbox.insert(0, buffer[size:])
        return buffer[:size]

    def start(self) -> None:
        try:
            if self.service.startswith("shell"):
                self._shell()
            elif self.service.startswith("sync:"):
                _Sync(self).serve()
            else:
                self.close()
        except OSError:  # the daemon was stopped (a phone pulled out mid-command)
            pass

    def _shell(self) -> None:
        options, _, command = self.service.partition(":")
        daemon = self.transport.daemon
        if command.strip() == "reboot":
            self.close()
            threading.Thread(target=daemon.reboot, daemon=True).start()
            return
        mapped = command
        for top in ("/data/", "/sys/"):  # the device's own trees live under its root folder
            mapped = mapped.replace(top, f"{daemon.root}{top}")
        env = {**os.environ, "PATH": f"{daemon._bin}:{os.environ['PATH']}"}
        done = subprocess.run(
            ["sh", "-c", mapped], capture_output=True, env=env, cwd=daemon.root, check=False
        )
        if "v2" in options.split(","):
            for kind, data in ((1, done.stdout), (2, done.stderr)):
                if data:
                    self.write(bytes([kind]) + struct.pack("<I", len(data)) + data)
            self.write(bytes([3]) + struct.pack("<I", 1) + bytes([done.returncode & 0xFF]))
        else:
            self.write(done.stdout + done.stderr)
        self.close()


class _Sync:
    def __init__(self, stream: _Stream) -> None:
        self.stream = stream
        self.daemon = stream.transport.daemon

    def _request(self) -> tuple[bytes, bytes]:
        head = self.stream.read(8)
        length = struct.unpack("<I", head[4:])[0]
        return head[:4], self.stream.read(length) if head[:4] != b"DONE" else b""

    def serve(self) -> None:
        while True:
            kind, body = self._request()
            if kind == b"STAT":
                self._stat(self.daemon.local(body.decode()))
            elif kind == b"SEND":
                self._receive_file(body.decode())
            elif kind == b"RECV":
                self._send_file(self.daemon.local(body.decode()))
            elif kind == b"LIST":
                self._list(self.daemon.local(body.decode()))
            else:
                self.stream.close()
                return

    def _stat(self, path: str) -> None:
        try:
            info = os.stat(path)
            fields = (info.st_mode, info.st_size, int(info.st_mtime))
        except OSError:
            fields = (0, 0, 0)
        self.stream.write(b"STAT" + struct.pack("<3I", *fields))

    def _list(self, path: str) -> None:
        out = b""
        for name in sorted(os.listdir(path)) if os.path.isdir(path) else []:
            info = os.stat(os.path.join(path, name))
            raw = name.encode()
            out += (
                b"DENT"
                + struct.pack("<4I", info.st_mode, info.st_size, int(info.st_mtime), len(raw))
                + raw
            )
        self.stream.write(out + b"DONE" + bytes(16))

    def _receive_file(self, spec: str) -> None:
        path, _, mode = spec.rpartition(",")
        data = b""
        while True:
            kind, body = self._request()
            if kind == b"DATA":
                data += body
            else:
                break
        local = Path(self.daemon.local(path))
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        local.chmod(stat.S_IMODE(int(mode)) or 0o644)
        self.stream.write(b"OKAY" + bytes(4))

    def _send_file(self, path: str) -> None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            message = str(exc).encode()
            self.stream.write(b"FAIL" + struct.pack("<I", len(message)) + message)
            return
        for start in range(0, len(data), 64 * 1024):
            chunk = data[start : start + 64 * 1024]
            self.stream.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
        self.stream.write(b"DONE" + bytes(4))


@contextlib.contextmanager
def adb_server(home: Path) -> Iterator[int]:
    """A real adb server (adbutils' binary) on a private port, with its own HOME so that it
    writes its keys and logs there."""
    import adbutils

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(home)}
    server = subprocess.Popen(
        [adbutils.adb_path(), "-L", f"tcp:{port}", "nodaemon", "server"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def connect(port: int, daemon: FakeAdbd) -> str:
    """Register the daemon with the adb server; its serial once it shows as ``device``."""
    import adbutils

    client = adbutils.AdbClient(host="127.0.0.1", port=port)
    serial = f"127.0.0.1:{daemon.port}"
    client.connect(serial, timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if serial in {d.serial for d in client.device_list()}:
            return serial
        time.sleep(0.05)
    raise RuntimeError(f"{serial} did not come up")
