"""The dashboard's web app (Starlette, served by uvicorn): pages over the history store, a JSON
API, and an upload endpoint for CI jobs that cannot open the database.

Read-only unless a token is configured: then ``POST /api/runs`` with ``Authorization: Bearer
TOKEN`` stores a run file as pytest would. Every page is addressed by its query string, so a
link pasted into a pull request opens the same view. Pages run no inline script and load
nothing from elsewhere (a Content-Security-Policy says so to the browser too).
"""

from __future__ import annotations

import hmac
import importlib.util
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import Connection
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..runfile import check_run
from ..store import history
from ..store.location import Location, shown
from ..store.regressions import set_triage
from . import views

HERE = Path(__file__).parent
LOG = logging.getLogger("pytest_aibench.dashboard")
# An upload is read whole, then parsed and checked: its peak is a few times its size (16 MiB of
# run file: +104 MiB at most, perf/upload_memory.py, docs/performance.md).
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
# plotly.js injects the styles of its charts, so styles may be inline; scripts may not
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


def plotly_js() -> Path:
    """plotly.js as the plotly package ships it: the page needs no network."""
    found = importlib.util.find_spec("plotly")
    if found is None or found.origin is None:
        raise RuntimeError(
            "aibench serve draws its charts with plotly.js from the plotly package: "
            "pip install 'pytest-aibench[lab]'"
        )
    return Path(found.origin).parent / "package_data" / "plotly.min.js"


def create_app(location: Location, token: str | None = None) -> Starlette:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals["store"] = shown(location)
    chart_library = plotly_js()

    @contextmanager
    def store() -> Iterator[Connection]:
        with history.connect(location, create=False) as db:
            yield db

    def page(name: str, make: Callable[[Connection, Request], dict[str, Any]]) -> Any:
        async def endpoint(request: Request) -> Response:
            def read() -> dict[str, Any]:
                with store() as db:
                    return make(db, request)

            try:
                context = await run_in_threadpool(read)
            except (LookupError, ValueError) as exc:
                return _problem(request, templates, 404, str(exc))
            return templates.TemplateResponse(
                request, name, {"query": request.query_params, **context}
            )

        return endpoint

    def lab_page(db: Connection, request: Request) -> dict[str, Any]:
        return {**views.lab_view(db, request.query_params), "writable": token is not None}

    async def triage_form(request: Request) -> Response:
        """A person's triage of an alert, from the front page's form (no script needed)."""
        fields = parse_qs((await request.body()).decode())
        form = {key: values[-1] for key, values in fields.items()}
        alert = request.path_params["alert"]
        if token is None or not hmac.compare_digest(form.get("token", "").encode(), token.encode()):
            return _problem(request, templates, 401, "a valid token is needed to triage")

        def write() -> None:
            with history.connect(location, create=False, write=True) as db:
                set_triage(db, alert, form.get("state", ""), form.get("who", ""))

        try:
            await run_in_threadpool(write)
        except ValueError as exc:
            return _problem(request, templates, 400, str(exc))
        return RedirectResponse(f"/#alert-{alert}", status_code=303)

    def runs_page(db: Connection, request: Request) -> dict[str, Any]:
        filters = views.filters_from(request.query_params)
        return {"runs": views.run_list(db, filters), "fields": views.FILTER_FIELDS}

    def run_page(db: Connection, request: Request) -> dict[str, Any]:
        return views.run_view(history.find_run(db, request.path_params["run"]))

    def trend_page(db: Connection, request: Request) -> dict[str, Any]:
        item = request.query_params.get("item") or ""
        view = views.trend_view(db, item, request.query_params.get("metric") or None)
        if view.chart is None:
            raise LookupError(f"no stored run measured {item!r}")
        return {"view": view, "charts": {"trend": view.chart}}

    def compare_page(db: Connection, request: Request) -> dict[str, Any]:
        query = request.query_params
        # without both, the last two runs: what a person opening /compare wants first
        newest = history.newest_uids(db, 2)
        control = history.find_run(db, query.get("a") or newest[-1])
        treatment = history.find_run(db, query.get("b") or newest[0])
        min_effect = _number(query, "min_effect", 5.0) / 100
        alpha = _number(query, "alpha", 0.01)
        force = query.get("force") == "1"
        rows = views.compare_view(control, treatment, min_effect, alpha, force)
        return {
            "a": control,
            "b": treatment,
            "rows": rows,
            "min_effect": min_effect,
            "alpha": alpha,
            "force": force,
        }

    def ab_page(db: Connection, request: Request) -> dict[str, Any]:
        run = history.find_run(db, request.path_params["run"])
        nodeid = request.query_params.get("item")
        for item in run["items"]:
            if item["nodeid"] == nodeid and item.get("comparison") == "ab":
                return {"run": run, **views.ab_view(item)}
        raise LookupError(f"run {run['id']} has no A/B item {nodeid!r}")

    async def api_runs(request: Request) -> Response:
        if request.method == "POST":
            return await _upload(request, location, token)

        def read() -> list[dict[str, Any]]:
            with store() as db:
                return views.run_list(db, views.filters_from(request.query_params))

        return JSONResponse(await run_in_threadpool(read))

    async def api_run(request: Request) -> Response:
        def read() -> Any:
            with store() as db:
                return history.find_run(db, request.path_params["run"])

        try:
            return JSONResponse(await run_in_threadpool(read))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)

    async def api_regressions(request: Request) -> Response:
        def read() -> dict[str, Any]:
            with store() as db:
                return views.lab_json(db, request.query_params)

        return JSONResponse(await run_in_threadpool(read))

    async def chart_js(request: Request) -> Response:
        return FileResponse(chart_library, media_type="text/javascript")

    async def security_headers(request: Request, call_next: Any) -> Response:
        try:
            response: Response = await call_next(request)
        except Exception:  # a bug of ours: said in the log, answered with our headers too
            LOG.exception("aibench serve: %s %s failed", request.method, request.url.path)
            response = PlainTextResponse(
                "500: the dashboard failed on this page; its log says why", status_code=500
            )
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    return Starlette(
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=security_headers)],
        routes=[
            Route("/", page("lab.html", lab_page)),
            Route("/alerts/{alert}", triage_form, methods=["POST"]),
            Route("/runs", page("runs.html", runs_page)),
            Route("/runs/{run}", page("run.html", run_page)),
            Route("/runs/{run}/ab", page("ab.html", ab_page)),
            Route("/trend", page("trend.html", trend_page)),
            Route("/compare", page("compare.html", compare_page)),
            Route("/api/runs", api_runs, methods=["GET", "POST"]),
            Route("/api/runs/{run}", api_run),
            Route("/api/regressions", api_regressions),
            Route("/static/plotly.min.js", chart_js),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
    )


def _number(query: Any, name: str, default: float) -> float:
    try:
        return float(query.get(name) or default)
    except ValueError:
        raise ValueError(
            f"{name}={query.get(name)!r} in the address: expected a number, e.g. {name}={default:g}"
        ) from None


def _problem(request: Request, templates: Jinja2Templates, status: int, message: str) -> Response:
    return templates.TemplateResponse(
        request,
        "problem.html",
        {"message": message, "query": request.query_params},
        status_code=status,
    )


async def _upload(request: Request, location: Location, token: str | None) -> Response:
    """A run file from a CI job: stored once (a second upload of one run adds nothing)."""
    if token is None:
        return JSONResponse(
            {"error": "uploads are off: start aibench serve with --token-file to allow them"},
            status_code=405,
        )
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return JSONResponse(
            {"error": "a valid 'Authorization: Bearer TOKEN' is needed"}, status_code=401
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:
            return JSONResponse(
                {"error": f"the run file is larger than {MAX_UPLOAD_BYTES >> 20} MiB"},
                status_code=413,
            )
    try:
        run = check_run(json.loads(body), "the uploaded body")
    except ValueError as exc:  # JSONDecodeError is one
        return JSONResponse({"error": str(exc)}, status_code=400)
    added = await run_in_threadpool(history.append, location, run)
    return JSONResponse(
        {"id": history.run_uid(run), "added": added}, status_code=201 if added else 200
    )


def serve(location: Location, host: str, port: int, token: str | None) -> None:
    import uvicorn  # noqa: PLC0415  (a server's own module, for `aibench serve` only)

    uvicorn.run(create_app(location, token), host=host, port=port, log_level="info")
