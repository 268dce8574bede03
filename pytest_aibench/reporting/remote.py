"""The remote reporter: each run's records posted to a results server, and nothing lost when
the server is away.

Wire format (FAI-PEP's, so its result server takes it): ``POST`` a JSON body
``{"access_token": TOKEN, "logs": "<JSON list>"}``; each log is ``{"category", "message",
"line_escape": false, "id"}`` whose ``message`` is the JSON of ``{"int": {...}, "normal":
{...}, "normvector": {...}}``. Unlike FAI-PEP, statistics keep full precision (a server with
integer columns rounds them itself) and every log carries a stable ``id`` a server can use to
drop a record sent twice (a retried request whose answer was lost).

A batch is delivered when the server answers 2xx and, where the answer has FAI-PEP's
``count``, it equals the number of logs sent. Connection errors, time-outs, 5xx, 408 and 429
are retried with exponential back-off until the reporter's time is up; then (or on any other
refusal) the batches not delivered are spooled under ``<storage>/spool/`` and the next run
that reports to the same URL sends them first. The token is sent in the body only: it is
never printed, never written to the spool or a run file, and never follows a redirect to
another scheme, host or port.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

from ..atomic import write_json
from ..endpoint import Endpoint
from ..metrics import by_key
from ..records import REGRESSED, ItemRecord, MetricDict, RunFile
from ..store.spool import set_aside
from .faipep import records

BATCH_SIZE = 100
MAX_REDIRECTS = 5
FIRST_BACKOFF_S, MAX_BACKOFF_S, MAX_REQUEST_S = 0.5, 16.0, 30.0
SPOOL_FORMAT = "pytest-aibench-spool"
_RETRIED_STATUSES = frozenset({408, 429})
_META_INTS = ("time", "commit_time")


# -- what is sent ---------------------------------------------------------------------------


def log_entries(run: RunFile, category: str) -> list[dict[str, Any]]:
    """One log per item and metric key of the run."""
    items = {item["nodeid"]: item for item in run["items"]}
    logs = []
    for entry in records(run):
        meta = entry["meta"]
        item = items[meta["nodeid"]]
        controls = _ab_controls(item)
        regressed = {
            verdict["key"] for verdict in item.get("verdicts", []) if verdict["status"] == REGRESSED
        }
        for key, record in entry["data"].items():
            message = _message(meta, record, controls.get(key), key in regressed)
            logs.append(
                {
                    "category": category,
                    "message": json.dumps(message),
                    "line_escape": False,
                    "id": _log_id(run, meta["nodeid"], key),
                }
            )
    return logs


def _ab_controls(item: ItemRecord) -> dict[str, MetricDict]:
    control = ((item.get("extra") or {}).get("ab") or {}).get("control") or []
    return by_key(control)


def _message(
    meta: Mapping[str, Any],
    record: Mapping[str, Any],
    control: Mapping[str, Any] | None,
    regressed: bool,
) -> dict[str, Any]:
    numbers = {name: meta[name] for name in _META_INTS if name in meta}
    numbers.update(record.get("summary") or {})
    numbers["num_runs"] = record.get("num_runs")
    numbers[REGRESSED] = int(regressed)
    vectors = {"values": list(record.get("values") or [])}
    if control:
        numbers.update(
            {f"control_{stat}": value for stat, value in (control.get("summary") or {}).items()}
        )
        vectors["control_values"] = list(control.get("values") or [])
    normal = {key: value for key, value in meta.items() if key not in _META_INTS}
    normal.update(
        {
            "type": record["type"],
            "metric": record["metric"],
            "unit": record.get("unit"),
            "info_string": record.get("info_string", ""),
        }
    )
    return {"int": numbers, "normal": normal, "normvector": vectors}


def _log_id(run: RunFile, nodeid: str, key: str) -> str:
    text = f"{run.get('id') or run['created']}\0{nodeid}\0{key}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# -- the spool --------------------------------------------------------------------------------


@dataclass
class Pending:
    """Logs waiting to be sent; ``path`` is their spool file when an earlier run left them."""

    logs: list[dict[str, Any]]
    path: Path | None = None
    lock: IO[str] | None = field(default=None, repr=False)

    def done(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.close()  # closing drops the flock
            self.lock = None


def spooled(spool: Path, endpoint: Endpoint, said: list[str]) -> Iterator[Pending]:
    """Spool files for this URL that no other process is sending right now (each is locked
    while it is sent, so two concurrent runs never both deliver it). A file that is no spool
    file of ours is set aside, said in ``said``."""
    for path in sorted(spool.glob("*.json")):
        try:
            handle = path.open(encoding="utf-8")
        except OSError:
            continue  # delivered by another run meanwhile
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()  # being sent by another run
            continue
        try:
            logs = _spooled_logs(json.load(handle), endpoint)
        except ValueError as exc:  # JSONDecodeError is one
            handle.close()
            said.append(f"aibench: remote reporter: {set_aside(path, str(exc))}")
            continue
        # A file is never rewritten, only removed once sent: if it is gone now, another run
        # sent it between our open and our lock.
        if logs is not None and path.exists():
            yield Pending(logs, path, handle)
        else:
            handle.close()


def _spooled_logs(data: Any, endpoint: Endpoint) -> list[dict[str, Any]] | None:
    """The records of a spool file for ``endpoint``; ``None`` for another URL's file;
    ``ValueError`` for a file that is not a spool file."""
    if not isinstance(data, dict) or data.get("format") != SPOOL_FORMAT:
        raise ValueError(f"not a {SPOOL_FORMAT} file")
    logs = data.get("logs")
    if not isinstance(data.get("url"), str) or not isinstance(logs, list):
        raise ValueError("a spool file needs 'url' (text) and 'logs' (a list)")
    if not all(isinstance(log, dict) for log in logs):
        raise ValueError("every entry of 'logs' must be a JSON object")
    return logs if data["url"] == endpoint.url else None


def _new_name() -> str:
    """Sorts in time, so the oldest records are sent first."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.json"


def spool_logs(path: Path, endpoint: Endpoint, logs: Sequence[dict[str, Any]]) -> None:
    """Written whole or not at all (a temporary name, then a rename); never the token."""
    write_json(
        path,
        {
            "format": SPOOL_FORMAT,
            "url": endpoint.url,
            "category": endpoint.category,
            "logs": list(logs),
        },
    )


# -- delivery ---------------------------------------------------------------------------------


class Refused(Exception):
    """The server will not take the batch as it is (retrying cannot help)."""


@functools.cache
def _opener() -> Any:
    """urllib's opener that follows no redirect (urllib.request and ssl are loaded here, when a
    run is posted, not with the plugin)."""
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # the 3xx reaches us as an HTTPError, and _post decides

    return urllib.request.build_opener(NoRedirects)


@dataclass
class Reporter:
    endpoint: Endpoint
    token: str | None
    spool: Path
    budget_s: float
    sleep: Callable[[float], None] = time.sleep
    requests: int = 0
    problems: list[str] = field(default_factory=list)

    def report(self, run: RunFile) -> list[str]:
        """Send what earlier runs spooled, then this run; the lines say what happened."""
        deadline = time.monotonic() + self.budget_s
        said: list[str] = []
        backlog = list(spooled(self.spool, self.endpoint, said))
        fresh = Pending(log_entries(run, self.endpoint.category))
        sent = {"fresh": 0, "spooled": 0}
        kept = 0
        for pending in [*backlog, fresh]:
            delivered = self._send(pending.logs, deadline)
            sent["fresh" if pending.path is None else "spooled"] += delivered
            kept += self._settle(pending, pending.logs[delivered:])
        return [*said, *self._summary(sent["fresh"], sent["spooled"], kept)]

    def _settle(self, pending: Pending, left: list[dict[str, Any]]) -> int:
        """Spool what is left (a spool file partly sent is replaced by a new one with the
        rest), and remove a spool file that is sent."""
        if left and (pending.path is None or len(left) < len(pending.logs)):
            spool_logs(self.spool / _new_name(), self.endpoint, left)
        if len(left) < len(pending.logs):
            pending.done()
        pending.release()
        return len(left)

    def _summary(self, sent: int, spooled_sent: int, kept: int) -> list[str]:
        where = self.endpoint.shown
        requests = f"{self.requests} request" + ("s" if self.requests != 1 else "")
        lines = [
            f"aibench: remote reporter sent {sent} records to {where} in {requests}"
            + (f", and {spooled_sent} spooled by earlier runs" if spooled_sent else "")
        ]
        if kept:
            reason = self.problems[-1] if self.problems else "no time left"
            lines.append(
                f"aibench: remote reporter: {kept} records kept in {self.spool} to be "
                f"sent by the next run ({reason})"
            )
        return lines

    def _send(self, logs: Sequence[dict[str, Any]], deadline: float) -> int:
        """How many of ``logs`` the server took, batch by batch, stopping at the first batch
        that could not be delivered."""
        delivered = 0
        for start in range(0, len(logs), BATCH_SIZE):
            batch = logs[start : start + BATCH_SIZE]
            if not self._deliver(batch, deadline):
                break
            delivered += len(batch)
        return delivered

    def _deliver(self, batch: Sequence[dict[str, Any]], deadline: float) -> bool:
        body = json.dumps(
            {"access_token": self.token or "", "logs": json.dumps(list(batch))}
        ).encode()
        backoff = FIRST_BACKOFF_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                self.requests += 1
                return self._post(self.endpoint.url, body, len(batch), remaining)
            except Refused as exc:
                self.problems.append(str(exc))
                return False
            except (OSError, ValueError) as exc:
                self.problems.append(_describe(exc))
            pause = min(backoff, MAX_BACKOFF_S, deadline - time.monotonic())
            if pause > 0:
                self.sleep(pause)
            backoff *= 2

    def _post(self, url: str, body: bytes, count: int, remaining: float) -> bool:
        import ssl
        import urllib.request

        for _ in range(MAX_REDIRECTS + 1):
            request = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "pytest-aibench"},
            )
            try:
                with _opener().open(request, timeout=min(MAX_REQUEST_S, remaining)) as answer:
                    return _accepted(answer.read(), count)
            except urllib.error.HTTPError as exc:
                target = _redirect_target(url, exc)
                if target is None:
                    raise _failure(exc) from None
                url = target
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, ssl.SSLCertVerificationError):
                    raise Refused(
                        f"the server's certificate is not trusted "
                        f"({exc.reason.verify_message}); if your team has its own "
                        "CA, point SSL_CERT_FILE at its bundle"
                    ) from None
                raise
        raise Refused(f"more than {MAX_REDIRECTS} redirects from {self.endpoint.shown}")


def _accepted(answer: bytes, count: int) -> bool:
    """FAI-PEP's rule where the server follows it: the answer counts the logs it stored. A
    short count is retried (the logs' ids let the server drop the ones it has)."""
    try:
        data = json.loads(answer or b"null")
    except ValueError:
        return True  # not FAI-PEP's server: its 2xx is the word we have
    if isinstance(data, dict) and "count" in data and data["count"] != count:
        raise ValueError(f"the server stored {data['count']} of {count} records")
    return True


def _redirect_target(url: str, error: urllib.error.HTTPError) -> str | None:
    """Where a 3xx points, followed with the same POST body, but only to the same scheme,
    host and port: the token must not travel anywhere nobody named."""
    if error.code not in (301, 302, 303, 307, 308):
        return None
    target = urljoin(url, error.headers.get("Location", ""))
    if _origin(target) != _origin(url):
        scheme, host, port = _origin(target)
        raise Refused(
            f"HTTP {error.code} redirect to another origin, {scheme}://{host}:{port}: not "
            "followed with the access token; name that URL in --aibench-remote-reporter if "
            "it is right"
        )
    return target


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:  # a port that is no number: an origin of its own
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port


def _failure(error: urllib.error.HTTPError) -> Exception:
    """Server errors, 408 and 429 are worth another try (an ``OSError``); the rest are not."""
    text = f"HTTP {error.code} {error.reason}"
    return OSError(text) if error.code >= 500 or error.code in _RETRIED_STATUSES else Refused(text)


def _describe(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return "the server did not answer in time"
    if isinstance(error, urllib.error.URLError):
        return f"cannot reach the server: {error.reason}"
    return str(error)
