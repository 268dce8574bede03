"""The remote reporter against a real HTTP server on loopback that answers as FAI-PEP's result
server does, fails on demand, hangs, or redirects."""

import json
import socket
import ssl
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import pytest
from pytest import MonkeyPatch, Pytester, RunResult

from pytest_aibench.endpoint import Endpoint

from .helpers import generic_spec, write_json, write_program

TOKEN = "s3cret-token-42"


class Project(Protocol):
    """Runs the demo project, reporting to ``url``; asserts both items passed."""

    def __call__(self, url: str, *options: str) -> RunResult: ...


# Fractional samples, and 150 operator rows so that a run needs two batches of 100.
PROGRAM = """#!/usr/bin/env python3
import json
for value in (1.234567, 2.345678, 3.456789):
    print("AIBENCH " + json.dumps({"type": "NET", "metric": "latency", "unit": "ms",
                                   "value": value}))
for op in range(OPERATORS):
    print("AIBENCH " + json.dumps({"type": f"op{op}", "metric": "latency", "unit": "ms",
                                   "value": 0.125}))
"""


@dataclass
class ResultServer:
    """Stores each log of a request it accepts; ``plan`` says how to answer the next POSTs
    (``ok``, a status such as ``500``, ``hang``, or ``redirect:<URL>``), then ``ok``."""

    port: int = 0
    plan: list[str] = field(default_factory=list)
    stored: Counter[str] = field(default_factory=Counter)
    logs: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    handler: type[BaseHTTPRequestHandler] | None = None
    httpd: ThreadingHTTPServer | None = None

    def url(self, path: str = "/benchmark/store-result", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def listen(self, certificate: tuple[Path, Path] | None = None) -> None:
        """Serve on ``port`` (a free one the first time); HTTPS with a ``(cert, key)`` pair."""
        assert self.handler, "the fixture sets the handler"
        self.release.clear()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        if certificate:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        """Nothing listens on the port any more: connections are refused."""
        self.release.set()
        assert self.httpd, "listen() first"
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ResultServer]:
    state = ResultServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.paths.append(self.path)
            state.bodies.append(body)
            step = state.plan.pop(0) if state.plan else "ok"
            if step == "hang":
                state.release.wait(30)
                return
            if step.startswith("redirect:"):
                self.send_response(308)
                self.send_header("Location", step.removeprefix("redirect:"))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if step != "ok":
                self.answer(int(step), {"status": "error"})
                return
            logs = json.loads(body["logs"])
            state.stored.update(log["id"] for log in logs)
            state.logs += logs
            self.answer(200, {"status": "success", "count": len(logs)})

        def answer(self, status: int, data: object) -> None:
            text = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: object) -> None:
            pass

    state.handler = Handler
    state.listen()
    yield state
    state.stop()


@pytest.fixture
def project(pytester: Pytester, monkeypatch: MonkeyPatch) -> Project:
    monkeypatch.setenv("AIBENCH_REMOTE_ACCESS_TOKEN", TOKEN)
    write_program(pytester.path / "prog.py", PROGRAM.replace("OPERATORS", "0"))
    write_program(pytester.path / "many.py", PROGRAM.replace("OPERATORS", "150"))
    tests = [
        {"identifier": name, "metric": "delay", "iter": 3, "commands": [f"{{files.{name}}}"]}
        for name in ("small", "many")
    ]
    spec = generic_spec("demo", tests=tests)
    spec["model"]["files"] = {
        name: {"filename": f"{file}.py", "location": f"{file}.py"}
        for name, file in (("small", "prog"), ("many", "many"))
    }
    write_json(pytester.path / "demo.json", spec)

    def run(url: str, *options: str) -> RunResult:
        result = pytester.runpytest(
            "--aibench-spec=demo.json",
            f"--aibench-remote-reporter={url}",
            "--aibench-json=run.json",
            *options,
        )
        result.assert_outcomes(passed=2)
        return result

    return run


# small: NET latency and peak memory; many: the same and 150 operators
RECORDS_PER_RUN = 2 + 2 + 150


def spooled(pytester: Pytester) -> list[dict[str, Any]]:
    return [
        json.loads(path.read_text())
        for path in sorted((pytester.path / ".aibench" / "spool").glob("*.json"))
    ]


def test_every_record_is_posted_once_at_full_precision_in_batches(
    pytester: Pytester, project: Project, server: ResultServer
) -> None:
    result = project(server.url() + "|team")
    result.stdout.fnmatch_lines(
        [f"aibench: remote reporter sent {RECORDS_PER_RUN} records to {server.url()} in 2 requests"]
    )
    assert len(server.logs) == RECORDS_PER_RUN and set(server.stored.values()) == {1}
    assert [body["access_token"] for body in server.bodies] == [TOKEN, TOKEN]
    net = next(
        json.loads(log["message"])
        for log in server.logs
        if '"nodeid": "demo.json::demo[small-host]"' in log["message"]
        and '"type": "NET"' in log["message"]
    )
    assert net["normvector"]["values"] == [1.234567, 2.345678, 3.456789]
    assert net["int"]["p50"] == 2.345678  # FAI-PEP would have sent 2
    assert net["normal"]["unit"] == "ms" and net["normal"]["identifier"] == "small"
    assert {log["category"] for log in server.logs} == {"team"}
    assert TOKEN not in result.stdout.str() + result.stderr.str()
    assert TOKEN not in (pytester.path / "run.json").read_text()


def test_a_server_failing_twice_then_recovering_gets_every_record_once(
    pytester: Pytester, project: Project, server: ResultServer
) -> None:
    server.plan = ["500", "503"]
    result = project(server.url())
    result.stdout.fnmatch_lines(
        [f"aibench: remote reporter sent {RECORDS_PER_RUN} records to {server.url()} in 4 requests"]
    )
    assert len(server.stored) == RECORDS_PER_RUN and set(server.stored.values()) == {1}
    assert spooled(pytester) == []


def test_records_spooled_while_the_server_hangs_are_sent_by_the_next_run(
    pytester: Pytester, project: Project, server: ResultServer
) -> None:
    server.plan = ["hang"] * 20
    result = project(server.url(), "--aibench-remote-timeout=1")
    result.stdout.fnmatch_lines(
        [
            "aibench: remote reporter sent 0 records to *",
            f"aibench: remote reporter: {RECORDS_PER_RUN} records kept in * to be sent by the next "
            "run (the server did not answer in time)",
        ]
    )
    kept = spooled(pytester)
    assert [len(entry["logs"]) for entry in kept] == [RECORDS_PER_RUN]
    assert TOKEN not in json.dumps(kept)
    server.plan, first_ids = [], {log["id"] for log in kept[0]["logs"]}
    result = project(server.url())
    result.stdout.fnmatch_lines(
        [
            f"aibench: remote reporter sent {RECORDS_PER_RUN} records to "
            f"* and {RECORDS_PER_RUN} spooled by earlier runs"
        ]
    )
    assert first_ids <= set(server.stored)
    assert len(server.stored) == 2 * RECORDS_PER_RUN and set(server.stored.values()) == {1}
    assert spooled(pytester) == []


def test_records_kept_while_the_server_is_down_are_sent_when_it_is_back(
    pytester: Pytester, project: Project, server: ResultServer
) -> None:
    server.stop()
    result = project(server.url(), "--aibench-remote-timeout=2")
    result.stdout.fnmatch_lines(
        [f"*: {RECORDS_PER_RUN} records kept in * (cannot reach the server: *Connection refused*)"]
    )
    server.listen()
    result = project(server.url())
    result.stdout.fnmatch_lines(
        [
            f"*sent {RECORDS_PER_RUN} records to * in 4 requests, "
            f"and {RECORDS_PER_RUN} spooled by earlier runs"
        ]
    )
    assert len(server.stored) == 2 * RECORDS_PER_RUN and spooled(pytester) == []


def test_https_with_the_teams_own_certificate_authority(
    pytester: Pytester, project: Project, server: ResultServer, monkeypatch: MonkeyPatch
) -> None:
    cert, key = pytester.path / "cert.pem", pytester.path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server.stop()
    server.listen(certificate=(cert, key))
    url = server.url().replace("http://", "https://")
    result = project(url, "--aibench-remote-timeout=30")
    result.stdout.fnmatch_lines(
        [
            f"aibench: remote reporter sent 0 records to {url} in 1 request",
            "*records kept in * (the server's certificate is not trusted "
            "(self-signed certificate); if your team has its own CA, "
            "point SSL_CERT_FILE at its bundle)",
        ]
    )
    assert not server.stored  # one attempt, no retries: trust will not come by waiting
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    result = project(url)
    result.stdout.fnmatch_lines(
        [
            f"*sent {RECORDS_PER_RUN} records to {url} in 4 requests, "
            f"and {RECORDS_PER_RUN} spooled by earlier runs"
        ]
    )
    assert len(server.stored) == 2 * RECORDS_PER_RUN


def test_a_spool_file_sent_in_part_is_replaced_by_the_rest(
    pytester: Pytester, project: Project, server: ResultServer
) -> None:
    server.plan = ["hang"] * 5
    project(server.url(), "--aibench-remote-timeout=1")  # all of them spooled
    server.plan = ["ok"] + ["hang"] * 5  # the first batch of 100 goes, then nothing
    left = RECORDS_PER_RUN - 100
    result = project(server.url(), "--aibench-remote-timeout=1")
    result.stdout.fnmatch_lines(
        [
            "*sent 0 records to * in *, and 100 spooled by earlier runs",
            f"*: {left + RECORDS_PER_RUN} records kept in *",
        ]
    )
    assert sorted(len(entry["logs"]) for entry in spooled(pytester)) == [left, RECORDS_PER_RUN]
    server.plan = []
    project(server.url())
    assert len(server.stored) == 3 * RECORDS_PER_RUN and set(server.stored.values()) == {1}
    assert spooled(pytester) == []


def test_a_redirect_on_the_same_host_is_followed_with_the_records(
    pytester: Pytester, project: Project, server: ResultServer
) -> None:
    server.plan = [f"redirect:{server.url('/v2/store')}"]
    project(server.url("/old"))
    assert server.paths[:2] == ["/old", "/v2/store"]
    assert len(server.stored) == RECORDS_PER_RUN


@pytest.mark.parametrize("elsewhere", ["another host", "another port"])
def test_a_redirect_to_another_origin_keeps_the_token_home(
    pytester: Pytester, project: Project, server: ResultServer, elsewhere: str
) -> None:
    if elsewhere == "another host":
        target = server.url("/elsewhere", host="localhost")
    else:
        with socket.socket() as spare:  # a port nobody named, on the same host
            spare.bind(("127.0.0.1", 0))
            target = f"http://127.0.0.1:{spare.getsockname()[1]}/elsewhere"
    server.plan = [f"redirect:{target}"]
    result = project(server.url())
    origin = target.removesuffix("/elsewhere")
    result.stdout.fnmatch_lines(
        [
            "aibench: remote reporter: * records kept in * (HTTP 308 redirect to another "
            f"origin, {origin}: not followed with the access token*"
        ]
    )
    assert server.paths == ["/benchmark/store-result"] and not server.stored
    assert [len(entry["logs"]) for entry in spooled(pytester)] == [RECORDS_PER_RUN]


def test_a_refused_token_is_not_retried_and_the_records_wait(
    pytester: Pytester, project: Project, server: ResultServer
) -> None:
    server.plan = ["401"]
    result = project(server.url())
    result.stdout.fnmatch_lines(["*records kept in * (HTTP 401 Unauthorized)"])
    assert len(server.paths) == 1


@pytest.mark.parametrize(
    ("text", "url", "category"),
    [
        ("results.example/store|oss", "https://results.example/store", "oss"),
        ("http://127.0.0.1:8000/x", "http://127.0.0.1:8000/x", "pytest-aibench"),
    ],
)
def test_endpoint_forms(text: str, url: str, category: str) -> None:
    assert Endpoint.parse(text) == Endpoint(url, category)
    assert Endpoint.parse("https://user:pw@host.example/x").shown == "https://host.example/x"


def test_a_bad_url_is_a_usage_error(pytester: Pytester) -> None:
    result = pytester.runpytest("--aibench-remote-reporter=ftp://host/x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--aibench-remote-reporter: expected an http(s) URL*"])


@pytest.mark.parametrize("junk", ["[1, 2]", "{", '{"format": "pytest-aibench-spool", "logs": 3}'])
def test_junk_in_the_spool_is_set_aside_and_the_run_is_sent(
    pytester: Pytester, project: Project, server: ResultServer, junk: str
) -> None:
    spool = pytester.path / ".aibench" / "spool"
    spool.mkdir(parents=True)
    (spool / "0-junk.json").write_text(junk)
    result = project(server.url())
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            f"aibench: remote reporter: {spool / '0-junk.json'} cannot be sent (*): set aside "
            f"as {spool / 'set-aside' / '0-junk.json'}",
            f"aibench: remote reporter sent {RECORDS_PER_RUN} records to *",
        ]
    )
    assert (spool / "set-aside" / "0-junk.json").read_text() == junk
    assert len(server.stored) == RECORDS_PER_RUN
