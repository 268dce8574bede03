"""pytest wiring only: the options, the role objects registered as plugins of their own, and
fixtures of a few lines. Each role's hooks are its own object's (as pytest-xdist's DSession
and its terminal reporter are):

- ``session.RunState``: the state the roles share (settings, fleet, cache, control, records);
- ``collector.SpecCollector``: which files are specs (collect.py makes their items);
- ``items.ItemRecorder``: each item's record, and the one place that fails an item for it;
- ``run_end.RunEnd``: the run-wide decisions and every output, as the run ends;
- ``reporting.terminal_hooks.TerminalHooks``: what is printed;
- ``xdist.XdistHooks``: the fleet and the control handed to xdist workers, device scheduling.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from . import hookspec
from .collector import SpecCollector
from .errors import AibenchError
from .items import ItemRecorder, new_recorder
from .marks import register_known_marks
from .preparing import interrupt_on_sigterm, one_paragraph, runner_for
from .run_end import RunEnd
from .session import RunState, is_worker, run_state
from .settings import add_options, from_config, keep_rootdir, mask_secrets
from .stash import CANDIDATES, CASE, COLLECTION, DEVICE, DEVICE_STATE, MODEL_MD5, SESSION

if TYPE_CHECKING:
    from .devices.base import Device
    from .recorder import Recorder
    from .runners.base import CaseFiles, Runner
    from .spec.model import Case


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    add_options(parser, pluginmanager)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    keep_rootdir(early_config, args)
    mask_secrets(early_config)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--aibench-list-devices``: print the fleet and stop, as ``--markers`` does."""
    if not config.getoption("aibench_list_devices"):
        return None
    from .devices.fleet import LISTING_COLUMNS, list_fleet
    from .reporting.terminal import render_table

    settings = from_config(config)
    rows, unreachable = list_fleet(settings, settings.storage_under(config.rootpath))
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
    run = RunState(config, from_config(config))
    collector = SpecCollector(run)
    config.stash[SESSION] = run
    config.stash[COLLECTION] = collector
    _register_roles(config, run, collector)
    collector.add_spec_args()
    if not is_worker(config):
        _load_before_anything_runs(run)


def _register_roles(config: pytest.Config, run: RunState, collector: SpecCollector) -> None:
    from .reporting.terminal_hooks import TerminalHooks

    plugins = config.pluginmanager
    plugins.register(collector, "aibench-collector")
    plugins.register(ItemRecorder(run), "aibench-recorder")
    plugins.register(RunEnd(run), "aibench-run-end")
    plugins.register(TerminalHooks(run, is_worker(config)), "aibench-terminal")
    # A good neighbour: a run with no spec and no device option keeps xdist's own scheduling
    # and marks as they are without the plugin (the aibench fixture needs neither).
    if run.settings.fleet_run:
        register_known_marks(config)
    if plugins.hasplugin("xdist"):
        from .xdist import XdistHooks, one_item_at_a_time

        plugins.register(XdistHooks(run), "aibench-xdist")
        if run.settings.spec:
            one_item_at_a_time(config)


def _load_before_anything_runs(run: RunState) -> None:
    """A missing control run or device stops pytest before anything runs (exit code 4)."""
    try:
        _ = run.control
        if run.settings.fleet_run:
            _ = run.fleet.devices
    except AibenchError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if SESSION in config.stash:
        run_state(config).close()


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def aibench_session(pytestconfig: pytest.Config) -> RunState:
    """The run's pytest-aibench state (settings, fleet, model cache)."""
    interrupt_on_sigterm(pytestconfig)
    return run_state(pytestconfig)


@pytest.fixture
def aibench_case(request: pytest.FixtureRequest) -> Case:
    """The spec case of this item (only spec items have one)."""
    case: Case | None = request.node.stash.get(CASE, None)
    if case is None:
        pytest.fail("the aibench_case fixture exists only for items made from spec files")
    return case


@pytest.fixture
def aibench_runner(aibench_case: Case, aibench_session: RunState) -> Runner:
    """The framework runner of this case; skips when it is missing here."""
    return runner_for(aibench_session.config, aibench_session.settings, aibench_case)


@pytest.fixture
def aibench_device(request: pytest.FixtureRequest, aibench_session: RunState) -> Iterator[Device]:
    """The device this item runs on (the host for plain Python tests), leased for the item:
    no other item, in this process or another, uses it meanwhile."""
    node, fleet = request.node, aibench_session.fleet
    with one_paragraph():
        candidates = node.stash.get(CANDIDATES, None) or (fleet.devices[0],)
        with fleet.lease(candidates) as info:
            node.stash[DEVICE] = info
            device = fleet.open(info)
            node.stash[DEVICE_STATE] = fleet.settled_state(device)
            yield device
            fleet.rest(device)


@pytest.fixture
def aibench_files(
    request: pytest.FixtureRequest, aibench_case: Case, aibench_session: RunState
) -> CaseFiles:
    """Host paths of the case's model and input files, downloaded and MD5-checked."""
    cache = aibench_session.cache
    with one_paragraph():
        files = cache.case_files(aibench_case)
    request.node.stash[MODEL_MD5] = cache.model_md5(files)
    return files


@pytest.fixture
def aibench(request: pytest.FixtureRequest, aibench_session: RunState) -> Iterator[Recorder]:
    """Time a callable (``aibench(fn, *args)``) and record metrics (``aibench.record``)."""
    recorder = new_recorder(aibench_session.settings, request.node)
    if "aibench_device" in request.fixturenames:  # that fixture holds the device's lease
        yield recorder
        return
    # A Python test times on the host: it holds the host's lease as spec items do, so that two
    # xdist workers never time at the same moment.
    fleet = aibench_session.fleet
    with fleet.lease((fleet.host.info,)):
        yield recorder
