"""Open a page in headless Chromium through the DevTools protocol and report what a person
would notice: console errors, exceptions, failed loads, images that did not render, and any
request beyond the page itself (a self-contained page makes none). Also takes a full-page
screenshot.

    python -m tests.chromium PAGE.html SCREENSHOT.png   # exit 1 if the page has problems
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
_IMAGES_JS = (
    "JSON.stringify([...document.images].map(i => "
    "({alt: i.alt, ok: i.complete && i.naturalWidth > 0, top: i.offsetTop})))"
)


def find_browser() -> str | None:
    return next(filter(None, map(shutil.which, BROWSERS)), None)


@dataclass
class PageCheck:
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    text: str = ""
    images: list[dict[str, Any]] = field(default_factory=list)
    screenshot: bytes = b""
    values: dict[str, Any] = field(default_factory=dict)  # what the asked expressions gave

    @property
    def problems(self) -> list[str]:
        broken = [
            f"image did not render: {image['alt']}" for image in self.images if not image["ok"]
        ]
        return self.errors + [f"request: {url}" for url in self.requests] + broken


class _DevTools:
    """Just enough of the protocol: numbered commands, and every event kept for later."""

    def __init__(self, url: str) -> None:
        import websocket

        self.socket = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.events: list[dict[str, Any]] = []
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(event.get("method") == method for event in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout} s")
            self.events.append(json.loads(self.socket.recv()))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _page_target(port: int, browser: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if browser.poll() is not None:
            raise RuntimeError(f"the browser exited with {browser.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as got:
                pages = [t for t in json.load(got) if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the browser's DevTools endpoint did not come up")


def check_page(page: Path | str, width: int = 1280, browser: str | None = None) -> PageCheck:
    return check_pages([page], width, browser)[0]


def check_pages(
    pages: Sequence[Path | str],
    width: int = 1280,
    browser: str | None = None,
    expressions: dict[str, str] | None = None,
    ready: str = "true",
) -> list[PageCheck]:
    """Each page (a file, or an http URL: requests to its own origin are then expected) in
    one browser; ``expressions`` are evaluated on each once ``ready`` (JavaScript) is true."""
    executable = browser or find_browser()
    if executable is None:
        raise FileNotFoundError(f"no browser found (looked for {', '.join(BROWSERS)})")
    port = _free_port()
    # Chromium's helper processes may still be writing the profile after the browser exits.
    with tempfile.TemporaryDirectory(
        prefix="aibench-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                f"--remote-debugging-port={port}",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            tools = _DevTools(_page_target(port, process))
            try:
                for domain in ("Runtime", "Log", "Network", "Page"):
                    tools.call(f"{domain}.enable")
                return [_inspect(tools, page, width, expressions or {}, ready) for page in pages]
            finally:
                tools.socket.close()
        finally:
            os.killpg(process.pid, signal.SIGTERM)  # the browser and its helpers
            process.wait(timeout=30)


def _evaluate(tools: _DevTools, expression: str) -> Any:
    return tools.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get(
        "value"
    )


def _inspect(
    tools: _DevTools, page: Path | str, width: int, expressions: dict[str, str], ready: str
) -> PageCheck:
    tools.events.clear()
    tools.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    url = page if isinstance(page, str) else page.resolve().as_uri()
    tools.call("Page.navigate", url=url)
    tools.wait_for("Page.loadEventFired")
    deadline = time.monotonic() + 20
    while not _evaluate(tools, ready) and time.monotonic() < deadline:
        time.sleep(0.1)
    check = PageCheck()
    check.text = _evaluate(tools, "document.body.innerText")
    check.images = json.loads(_evaluate(tools, _IMAGES_JS))
    check.values = {name: _evaluate(tools, js) for name, js in expressions.items()}
    size = tools.call("Page.getLayoutMetrics")["cssContentSize"]
    shot = tools.call(
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1},
    )
    check.screenshot = base64.b64decode(shot["data"])
    _collect(tools.events, url, check)
    return check


def _collect(events: list[dict[str, Any]], url: str, check: PageCheck) -> None:
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            check.errors.append(
                "console: "
                + " ".join(
                    str(arg.get("value", arg.get("description", ""))) for arg in params["args"]
                )
            )
        elif method == "Runtime.exceptionThrown":
            check.errors.append("exception: " + params["exceptionDetails"].get("text", ""))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            check.errors.append("log: " + params["entry"]["text"])
        elif method == "Network.loadingFailed":
            check.errors.append("failed load: " + params.get("errorText", ""))
        elif method == "Network.requestWillBeSent":
            requested = params["request"]["url"]
            if requested != url and not requested.startswith(("data:", _origin(url))):
                check.requests.append(requested)


def _origin(url: str) -> str:
    """``http://host:port/`` of a served page; a file has none (it may request nothing)."""
    if not url.startswith(("http://", "https://")):
        return "\0"  # matches no request
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/"


def main(argv: list[str]) -> int:
    page, screenshot = Path(argv[0]), Path(argv[1])
    check = check_page(page)
    screenshot.write_bytes(check.screenshot)
    for problem in check.problems:
        print(problem)
    print(
        f"{page}: {len(check.images)} images, {len(check.problems)} problems; "
        f"screenshot {screenshot}"
    )
    return 1 if check.problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
