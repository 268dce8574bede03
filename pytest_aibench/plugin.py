"""pytest wiring: options, hooks and fixtures of a few lines each. The per-run state and its
hooks live in session.py, what only xdist needs in xdist.py, the work in the modules they call."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from . import hookspec
from .errors import AibenchError
from .marks import register_known_marks
from .session import AibenchSession, fleet, is_worker, session_of
from .settings import add_options, from_config, keep_rootdir
from .stash import CANDIDATES, CASE, COLLECTION, DEVICE, DEVICE_STATE, MODEL_MD5, RECORDER, SESSION

if TYPE_CHECKING:
    from .devices.base import Device
    from .recorder import Recorder
    from .runners.base import CaseFiles, Runner
    from .spec.model import Case


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    add_options(parser, pluginmanager)


_SECRET_FLAG = "--aibench-remote-access-token"
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^\s:/@]*:)[^\s@/]+@")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    keep_rootdir(early_config, args)
    _mask_secrets(early_config)


def _mask_secrets(early_config: pytest.Config) -> None:
    """Secrets masked in the invocation arguments, which ``--debug`` writes to its log once
    parsing ends (and which nothing else of pytest's needs them in): the access token's value
    and the password of any URL (``--aibench-history postgresql://ci:PASSWORD@lab/db``)."""
    args = [_URL_PASSWORD.sub(r"\1***@", arg) for arg in early_config.invocation_params.args]
    for index, arg in enumerate(args):
        if arg.startswith(f"{_SECRET_FLAG}="):
            args[index] = f"{_SECRET_FLAG}=***"
        elif arg == _SECRET_FLAG and index + 1 < len(args):
            args[index + 1] = "***"
    if tuple(args) != tuple(early_config.invocation_params.args):
        early_config.invocation_params = dataclasses.replace(
            early_config.invocation_params, args=tuple(args)
        )


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--aibench-list-devices``: print the fleet and stop, as ``--markers`` does."""
    if not config.getoption("aibench_list_devices"):
        return None
    from .devices.fleet import LISTING_COLUMNS, listing, split_devices
    from .reporting.terminal import render_table

    settings = from_config(config)
    storage = settings.storage or config.rootpath / ".aibench"
    devices, unreachable = [], []
    with tempfile.TemporaryDirectory(prefix="pytest-aibench-") as scratch:
        for entry in split_devices(settings.devices) or ["host"]:  # one host down hides no other
            try:
                devices += fleet(dataclasses.replace(settings, devices=entry), Path(scratch))
            except pytest.UsageError as exc:
                unreachable.append(str(exc))
    rows = listing(settings, devices, storage)
    for line in render_table(rows, LISTING_COLUMNS, range(len(LISTING_COLUMNS))):
        print(line)
    for problem in unreachable:
        print(f"ERROR: {problem}", file=sys.stderr)
    return pytest.ExitCode.USAGE_ERROR if unreachable else 0


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "aibench(iterations=None, warmup=None): every spec item and every test that "
        "uses the aibench fixture (deselect them all with -m 'not aibench'); the arguments set "
        "the fixture's iterations and warmup",
    )
    session = AibenchSession(config, from_config(config))
    config.stash[SESSION] = session
    config.stash[COLLECTION] = session
    config.pluginmanager.register(session, "aibench-session")
    # A good neighbour: a run with no spec and no device option keeps xdist's own scheduling
    # and marks as they are without the plugin (the aibench fixture needs neither).
    fleet_run = bool(session.settings.spec or session.settings.devices)
    if fleet_run:
        register_known_marks(config)
    if config.pluginmanager.hasplugin("xdist"):
        from .xdist import XdistHooks, one_item_at_a_time

        config.pluginmanager.register(XdistHooks(session, fleet_run), "aibench-xdist")
        if session.settings.spec:
            one_item_at_a_time(config)
    session.add_spec_args()
    if not is_worker(config):
        # A missing control run or device stops pytest before anything runs (exit code 4).
        _ = session.control
        if fleet_run:
            _ = session.devices


def _interrupt_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM (a CI job cancelled, ``kill``) ends the run as Ctrl-C does: the running program is
    killed with all it started and the run is marked interrupted, instead of Python dying at
    once and leaving the benchmark running as an orphan. Installed when the first item that
    benchmarks sets up, so that a run that benchmarks nothing keeps its own signal handling."""
    if threading.current_thread() is not threading.main_thread() or config.stash.get(
        _SIGTERM_HANDLED, False
    ):
        return
    config.stash[_SIGTERM_HANDLED] = True

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    config.add_cleanup(restore)


_SIGTERM_HANDLED = pytest.StashKey[bool]()


@contextlib.contextmanager
def _one_paragraph() -> Iterator[None]:
    """Our errors at setup (a download, a device) as their message alone: it says where and how
    to fix; pytest's setup traceback through our code would only bury it."""
    try:
        yield
    except AibenchError as exc:
        pytest.fail(str(exc), pytrace=False)


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def aibench_session(pytestconfig: pytest.Config) -> AibenchSession:
    """The run's pytest-aibench state (settings, fleet, model cache)."""
    _interrupt_on_sigterm(pytestconfig)
    return session_of(pytestconfig)


@pytest.fixture
def aibench_case(request: pytest.FixtureRequest) -> Case:
    """The spec case of this item (only spec items have one)."""
    case: Case | None = request.node.stash.get(CASE, None)
    if case is None:
        pytest.fail("the aibench_case fixture exists only for items made from spec files")
    return case


@pytest.fixture
def aibench_runner(aibench_case: Case, aibench_session: AibenchSession) -> Runner:
    """The framework runner of this case; skips when it is missing here."""
    return aibench_session.runner_for(aibench_case)


@pytest.fixture
def aibench_device(
    request: pytest.FixtureRequest, aibench_session: AibenchSession
) -> Iterator[Device]:
    """The device this item runs on (the host for plain Python tests), leased for the item:
    no other item, in this process or another, uses it meanwhile."""
    node = request.node
    candidates = node.stash.get(CANDIDATES, None) or (aibench_session.devices[0],)
    settings = aibench_session.settings
    with _one_paragraph(), aibench_session.lease(candidates) as info:
        node.stash[DEVICE] = info
        device = aibench_session.open_device(info)
        node.stash[DEVICE_STATE] = _settled_state(device, settings.max_temperature)
        yield device
        if settings.cooldown and info.kind != "host":
            time.sleep(settings.cooldown)


TEMPERATURE_WAIT_S, TEMPERATURE_POLL_S = 600.0, 5.0


def _settled_state(device: Device, max_temperature: float | None) -> dict[str, float]:
    """The device's battery and temperature as the item starts, after waiting (at most ten
    minutes) for it to cool below --aibench-max-temperature."""
    state = device.state()
    deadline = time.monotonic() + TEMPERATURE_WAIT_S
    while (
        max_temperature is not None
        and state.get("temperature_c", 0) > max_temperature
        and time.monotonic() < deadline
    ):
        time.sleep(TEMPERATURE_POLL_S)
        state = device.state()
    return state


@pytest.fixture
def aibench_files(
    request: pytest.FixtureRequest, aibench_case: Case, aibench_session: AibenchSession
) -> CaseFiles:
    """Host paths of the case's model and input files, downloaded and MD5-checked."""
    with _one_paragraph():
        files = aibench_session.fetch_files(aibench_case)
    request.node.stash[MODEL_MD5] = aibench_session.model_md5(files)
    return files


@pytest.fixture
def aibench(request: pytest.FixtureRequest, aibench_session: AibenchSession) -> Iterator[Recorder]:
    """Time a callable (``aibench(fn, *args)``) and record metrics (``aibench.record``)."""
    recorder = aibench_session.new_recorder(request.node)
    request.node.stash[RECORDER] = recorder
    if "aibench_device" in request.fixturenames:  # that fixture holds the device's lease
        yield recorder
        return
    # A Python test times on the host: it holds the host's lease as spec items do, so that two
    # xdist workers never time at the same moment.
    with aibench_session.lease((aibench_session.host.info,)):
        yield recorder
