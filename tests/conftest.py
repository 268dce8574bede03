"""Shared test helpers: a real HTTP server on loopback; frameworks imported up front."""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# pytester restores sys.modules after each test, and C extensions such as onnx and torch cannot
# be imported a second time in one process: import them once, before any pytester snapshot.
# SQLAlchemy's compiled parts are among them (a second import fails with "'InternalTraversal'
# object is not callable"), with the dialects the history store opens.
for _framework in (
    "sqlalchemy",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.ext.compiler",
    "onnx",
    "onnxruntime",
    "ai_edge_litert.interpreter",
    "torch",
    "scipy.stats",
    "matplotlib.figure",
    "matplotlib.backends.backend_svg",
    # ExecuTorch registers torch operator libraries as it is imported: twice is an error
    "executorch.runtime",
    "executorch.devtools.inspector",
    "executorch.exir._serialize._program",
):
    with contextlib.suppress(ImportError), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExecuTorch's import calls deprecated importlib APIs
        importlib.import_module(_framework)


# The tests never wait on this machine's shared leases (anyone's benchmark may hold the host):
# this process and every pytest run it starts lease from a folder of this process's own. Tests
# of the shared folder itself name theirs.
_OWN_LEASES = tempfile.mkdtemp(prefix="aibench-test-leases-")
os.environ["AIBENCH_LEASE_DIR"] = _OWN_LEASES
atexit.register(functools.partial(shutil.rmtree, _OWN_LEASES, ignore_errors=True))


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    declared_length: int | None = None  # a Content-Length that lies: a truncated body
    delay: float = 0.0


@dataclass
class FileServer:
    port: int
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server_state = FileServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server_state.hits[self.path] += 1
            route = server_state.routes.get(self.path, Route(status=404, body=b"not found"))
            time.sleep(route.delay)
            self.send_response(route.status)
            length = route.declared_length if route.declared_length is not None else len(route.body)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(route.body)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server_state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One real PostgreSQL server per test process (tests/postgres.py)."""
    from . import postgres

    if not postgres.available():
        if os.environ.get("CI"):  # CI installs it: a missing server there is a failure
            pytest.fail("PostgreSQL is not installed, yet .ci/run installs it")
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    with postgres.server() as url:
        yield url


@pytest.fixture
def postgresql_url(postgres_server: str) -> str:
    """An empty database of its own on the test server."""
    from . import postgres

    return postgres.fresh_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A history store of each kind: a SQLite file, and a database on a real PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "h.sqlite")
    return str(request.getfixturevalue("postgresql_url"))


def files_of_a_published_wheel(folder: Path, requirement: str, members: dict[str, str]) -> Path:
    """Model files a published wheel ships, fetched from the package index at test time (never
    committed): ``members`` maps a file name in ``folder`` to its path in the wheel."""
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", requirement,
         "-d", str(folder)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if fetched.returncode != 0:
        pytest.skip(f"cannot fetch {requirement} from the package index: {fetched.stderr[-300:]}")
    (wheel,) = folder.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name, member in members.items():
            (folder / name).write_bytes(archive.read(member))
    return folder


@pytest.fixture(scope="session")
def basic_pitch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """basic-pitch 0.4.0's ONNX and LiteRT files of one network (a converted pair)."""
    where = "basic_pitch/saved_models/icassp_2022"
    members = {name: f"{where}/{name}" for name in ("nmp.onnx", "nmp.tflite")}
    return files_of_a_published_wheel(
        tmp_path_factory.mktemp("basic-pitch"), "basic-pitch==0.4.0", members
    )


@pytest.fixture(scope="session")
def silero_vad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """silero-vad 6.2.3's voice activity detector as ONNX (three inputs: audio, the recurrent
    state, the sample rate) and as TorchScript (the state kept inside the module)."""
    members = {name: f"silero_vad/data/{name}" for name in ("silero_vad.onnx", "silero_vad.jit")}
    return files_of_a_published_wheel(
        tmp_path_factory.mktemp("silero-vad"), "silero-vad==6.2.3", members
    )
