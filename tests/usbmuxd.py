"""A usbmuxd on loopback that speaks the plist usbmux protocol, with iPhones behind it whose
lockdownd answers the unpaired requests (QueryType, GetValue); and the app side of an iPhone
(install, container files, launch) that the plugin reaches through its IOSApps interface.

Clients reach it through ``USBMUXD_SOCKET_ADDRESS=127.0.0.1:PORT``, as they would a usbmuxd
exposed over TCP. Packets: a 16-byte little-endian header (length including itself, version 1,
message 8 = plist, tag) and an XML plist. After a successful ``Connect`` the same socket carries
the device's service; lockdownd frames each plist with a 4-byte big-endian length.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLIST_VERSION, PLIST_MESSAGE = 1, 8
LOCKDOWN_PORT = 62078
BAD_DEVICE, CONNECTION_REFUSED = 2, 3


@dataclass
class FakeIPhone:
    udid: str
    values: dict[str, Any] = field(default_factory=dict)
    device_id: int = 1

    def lockdown_values(self) -> dict[str, Any]:
        return {"UniqueDeviceID": self.udid, "DeviceClass": "iPhone", **self.values}


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


class _Mux(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        try:
            while True:
                length, _version, _message, tag = struct.unpack(
                    "<4I", _read_exactly(self.request, 16)
                )
                request = plistlib.loads(_read_exactly(self.request, length - 16))
                if self._answer(request, tag):
                    return
        except ConnectionError:
            return

    def _send(self, tag: int, payload: dict[str, Any]) -> None:
        body = plistlib.dumps(payload)
        self.request.sendall(
            struct.pack("<4I", 16 + len(body), PLIST_VERSION, PLIST_MESSAGE, tag) + body
        )

    def _answer(self, request: dict[str, Any], tag: int) -> bool:
        """Reply to one request; True when the socket now belongs to a device service."""
        kind = request.get("MessageType")
        phones = self.server.phones
        if kind == "ReadBUID":
            self._send(tag, {"BUID": "00000000-0000-0000-0000-00000000AB1E"})
        elif kind == "ListDevices":
            self._send(
                tag,
                {
                    "DeviceList": [
                        {
                            "MessageType": "Attached",
                            "DeviceID": phone.device_id,
                            "Properties": {
                                "SerialNumber": phone.udid,
                                "ConnectionType": "USB",
                                "DeviceID": phone.device_id,
                            },
                        }
                        for phone in phones
                    ]
                },
            )
        elif kind == "ReadPairRecord":  # never paired: these phones have no pair record
            self._send(tag, {"MessageType": "Result", "Number": BAD_DEVICE})
        elif kind == "Connect":
            port = socket.ntohs(int(request["PortNumber"]))
            phone = next((p for p in phones if p.device_id == request["DeviceID"]), None)
            if phone is None or port != LOCKDOWN_PORT:
                self._send(tag, {"MessageType": "Result", "Number": CONNECTION_REFUSED})
                return False
            self._send(tag, {"MessageType": "Result", "Number": 0})
            _Lockdownd(self.request, phone).serve()
            return True
        else:
            self._send(tag, {"MessageType": "Result", "Number": 1})
        return False


class _Lockdownd:
    """Only what an unpaired host may ask: no session, so no services."""

    def __init__(self, sock: socket.socket, phone: FakeIPhone) -> None:
        self.sock, self.phone = sock, phone

    def serve(self) -> None:
        try:
            while True:
                (length,) = struct.unpack(">I", _read_exactly(self.sock, 4))
                request = plistlib.loads(_read_exactly(self.sock, length))
                self._send(self._reply(request))
        except ConnectionError:
            return

    def _send(self, payload: dict[str, Any]) -> None:
        body = plistlib.dumps(payload)
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def _reply(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request.get("Request")
        if name == "QueryType":
            return {"Request": name, "Type": "com.apple.mobile.lockdown"}
        if name == "GetValue":
            values = self.phone.lockdown_values()
            key = request.get("Key")
            if key is None:
                return {"Request": name, "Value": values}
            if key in values:
                return {"Request": name, "Key": key, "Value": values[key]}
            return {"Request": name, "Error": "MissingValue"}
        return {"Request": name, "Error": "InvalidHostID"}


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    phones: list[FakeIPhone]


@contextmanager
def usbmuxd(phones: list[FakeIPhone]) -> Iterator[str]:
    """Serve ``phones``; yields the ``USBMUXD_SOCKET_ADDRESS`` value that reaches them."""
    server = _Server(("127.0.0.1", 0), _Mux)
    server.phones = phones
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.socket.getsockname()[:2]
        yield f"{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()


class FakeApps:
    """The app side of an iPhone, where pymobiledevice3's services would reach a real one: an
    installed app is the .ipa unpacked into a folder, its container another folder, and a launch
    runs the bundle's executable (a script) with the container as its home and working folder.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.launched: list[tuple[str, list[str]]] = []
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    def container(self, bundle_id: str) -> Path:
        folder = self.root / "containers" / bundle_id
        if not folder.is_dir():
            raise OSError(f"{bundle_id} is not installed")
        return folder

    def _path(self, bundle_id: str, remote: str) -> Path:
        return self.container(bundle_id) / remote.lstrip("/")

    def install(self, ipa: Path) -> None:
        with zipfile.ZipFile(ipa) as archive:
            app = next(n.split("/")[1] for n in archive.namelist() if n.endswith("Info.plist"))
            info = plistlib.loads(archive.read(f"Payload/{app}/Info.plist"))
            bundle = self.root / "apps" / info["CFBundleIdentifier"]
            shutil.rmtree(bundle, ignore_errors=True)
            archive.extractall(bundle)
        (bundle / "Payload" / app / info["CFBundleExecutable"]).chmod(0o755)
        (self.root / "containers" / info["CFBundleIdentifier"] / "tmp").mkdir(
            parents=True, exist_ok=True
        )

    def push(self, bundle_id: str, local: Path, remote: str) -> None:
        target = self._path(bundle_id, remote)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, target)

    def pull(self, bundle_id: str, remote: str, local: Path) -> None:
        shutil.copyfile(self._path(bundle_id, remote), local)

    def exists(self, bundle_id: str, remote: str) -> bool:
        return self._path(bundle_id, remote).exists()

    def remove(self, bundle_id: str, remote: str) -> None:
        path = self._path(bundle_id, remote)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    def launch(self, bundle_id: str, arguments: Sequence[str], env: Mapping[str, str]) -> int:
        bundle = self.root / "apps" / bundle_id / "Payload"
        app = next(bundle.iterdir())
        info = plistlib.loads((app / "Info.plist").read_bytes())
        home = self.container(bundle_id)
        self.launched.append((bundle_id, list(arguments)))
        process = subprocess.Popen(
            [sys.executable, str(app / info["CFBundleExecutable"]), *arguments],
            cwd=home,
            env={**os.environ, **env, "HOME": str(home)},
        )
        self._processes[process.pid] = process
        return process.pid

    def kill(self, pid: int) -> None:
        self._processes[pid].kill()
        self._processes[pid].wait()

    def reap(self) -> None:
        """Collect the exit status of apps that have ended (a real phone's launcher does), so
        that no ended app is left a zombie; one still running stays as it is, for tests to see."""
        for process in self._processes.values():
            process.poll()


def make_ipa(path: Path, bundle_id: str, script: str, apps: int = 1) -> Path:
    """An .ipa as Xcode lays one out, whose executable is a Python script."""
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(apps):
            app = f"Payload/Bench{index or ''}.app"
            archive.writestr(
                f"{app}/Info.plist",
                plistlib.dumps({"CFBundleIdentifier": bundle_id, "CFBundleExecutable": "Bench"}),
            )
            archive.writestr(f"{app}/Bench", script)
    return path
