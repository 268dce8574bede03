"""pytest wiring: options, hooks and fixtures. The work happens in the modules they call."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import pytest

from . import __version__, hookspec
from .cache import ModelCache
from .collect import CANDIDATES, CASE, DEVICE, SpecFile, register_known_marks
from .compare import ControlRun, adjust_for_many, item_key
from .devices.base import Device, DeviceInfo
from .devices.fleet import discover, open_device
from .devices.host import cpu_model, host_info
from .devices.lease import DEFAULT_LEASES, lease_any
from .errors import AibenchError, DeviceError
from .metrics import DEFAULT_STATISTICS
from .publish import Published, publish, publish_partial, wants_run_files
from .recorder import Recorder
from .report import (
    COLUMNS,
    COMPARE_COLUMNS,
    OPERATOR_COLUMNS,
    headline,
    operator_rows,
    render_table,
    summary_rows,
)
from .runners import BUILTIN_RUNNERS
from .runners.base import CaseFiles, Runner
from .settings import Settings, add_options, from_config
from .spec import SPEC_SUFFIXES, Case
from .store import build_run, commit_info, find_run, finite, machine_info, read_run

SESSION = pytest.StashKey["AibenchSession"]()
RECORDER = pytest.StashKey[Recorder]()
DEVICE_STATE = pytest.StashKey[dict[str, float]]()
MODEL_MD5 = pytest.StashKey[dict[str, str]]()
# The report attribute that carries an item's results to the controller. Extra report attributes
# travel through xdist's report serialisation; user_properties would too, but junitxml writes
# those into its XML, and raw samples do not belong there.
REPORT_ATTRIBUTE = "aibench"
FIXTURE_ITERATIONS = 50
FIXTURE_WARMUP = 5
_WORKER_DEVICES = "aibench_devices"
_WORKER_CONTROL = "aibench_control"
_MIB = 1 << 20


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


_SECRET_FLAG = "--aibench-remote-access-token"


def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """The access token's value masked in the invocation arguments, which ``--debug`` writes to
    its log once parsing ends (and which nothing else of pytest's needs the secret in)."""
    args = list(early_config.invocation_params.args)
    for index, arg in enumerate(args):
        if arg.startswith(f"{_SECRET_FLAG}="):
            args[index] = f"{_SECRET_FLAG}=***"
        elif arg == _SECRET_FLAG and index + 1 < len(args):
            args[index + 1] = "***"
    if tuple(args) != tuple(early_config.invocation_params.args):
        early_config.invocation_params = dataclasses.replace(
            early_config.invocation_params, args=tuple(args))


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--aibench-list-devices``: print the fleet and stop, as ``--markers`` does."""
    if not config.getoption("aibench_list_devices"):
        return None
    with tempfile.TemporaryDirectory(prefix="pytest-aibench-") as scratch:
        devices = fleet(from_config(config), Path(scratch))
    rows = [(d.kind, d.id, d.name, d.hash, d.abi, d.os) for d in devices]
    for line in render_table(rows, ("kind", "id", "name", "hash", "abi", "os"), range(6)):
        print(line)
    return 0


def fleet(settings: Settings, scratch: Path) -> list[DeviceInfo]:
    """The devices --aibench-devices names, probed; a usage error for one that is not there."""
    try:
        devices = discover(settings, scratch)
    except DeviceError as exc:
        raise pytest.UsageError(f"--aibench-devices: {exc}") from None
    return _renamed(devices, settings.hash_platform_mapping)


def _renamed(devices: list[DeviceInfo], mapping_file: Path | None) -> list[DeviceInfo]:
    """--aibench-hash-platform-mapping: the platform names a lab gives its devices."""
    if mapping_file is None:
        return devices
    try:
        names = json.loads(mapping_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(f"--aibench-hash-platform-mapping {mapping_file}: {exc}") \
            from None
    if not isinstance(names, dict):
        raise pytest.UsageError(f"--aibench-hash-platform-mapping {mapping_file}: expected a "
                                "JSON object of device hash to platform name")
    return [dataclasses.replace(d, name=str(names.get(d.hash, d.name))) for d in devices]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "aibench(iterations=None, warmup=None): every spec item and every test that "
        "uses the aibench fixture (deselect them all with -m 'not aibench'); the arguments set "
        "the fixture's iterations and warmup"
    )
    register_known_marks(config)
    _interrupt_on_sigterm(config)
    session = AibenchSession(config, from_config(config))
    config.stash[SESSION] = session
    config.pluginmanager.register(session, "aibench-session")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(session), "aibench-xdist")
        if session.settings.spec:
            _one_item_at_a_time(config)
    session.add_spec_args()
    if not is_worker(config):
        # A missing control run or device stops pytest before anything runs (exit code 4).
        _ = session.control
        if session.settings.spec or session.settings.devices:
            _ = session.devices


def _interrupt_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM (a CI job cancelled, ``kill``) ends the run as Ctrl-C does: the running program is
    killed with all it started and the run is marked interrupted, instead of Python dying at
    once and leaving the benchmark running as an orphan."""
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    config.add_cleanup(restore)


def _one_item_at_a_time(config: pytest.Config) -> None:
    """Under ``-n N`` without an explicit ``--dist``: xdist's default (``load``) hands each
    worker a batch of items up front, so a worker waits on the lease of a busy device while
    another device sits idle. ``loadgroup`` with no groups hands out one item at a time to
    whichever worker is free (measured in perf/fleet.py: 4 devices 2.98x faster than -n 0,
    against 2.47x with ``load``). No xdist_group marks are added, so node ids do not change."""
    given = any(arg == "-d" or arg.startswith("--dist") for arg in config.invocation_params.args)
    if getattr(config.option, "dist", None) == "load" and not given:
        config.option.dist = "loadgroup"


def session_of(config: pytest.Config) -> AibenchSession:
    return config.stash[SESSION]


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class AibenchSession:
    """Per-run state: settings, the fleet, the model cache and the results of every item."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.results: dict[str, dict[str, Any]] = {}
        self.broken_specs: set[str] = set()
        self._other_collection_errors = 0
        self._devices: dict[str, Device] = {}
        self.published = Published()

    # -- collection ------------------------------------------------------------------------

    def add_spec_args(self) -> None:
        """Make pytest collect the specs: instead of its default paths when the command line
        names no paths, beside them otherwise."""
        specs = self.settings.spec
        for path in specs:
            if not path.exists():
                raise pytest.UsageError(f"--aibench-spec {path}: no such file or folder")
        if not specs:
            return
        named = [str(path.resolve()) for path in specs]
        explicit = self.settings.specs_from_command_line
        if self.config.args_source == pytest.Config.ArgsSource.ARGS:
            if explicit:
                self.config.args.extend(arg for arg in named if arg not in self.config.args)
        elif explicit:
            self.config.args[:] = named  # pytest --aibench-spec X runs X, not the testpaths
        else:
            self.config.args.extend(named)  # specs from the ini file join the default paths

    @cached_property
    def _explicit_paths(self) -> set[Path]:
        invoked = self.config.invocation_params.dir
        return {(invoked / arg.split("::")[0]).resolve() for arg in self.config.args}

    @cached_property
    def _spec_roots(self) -> tuple[Path, ...]:
        roots = {path.resolve() for path in self.settings.spec}
        roots.update(p for p in self._explicit_paths if p.suffix.lower() in SPEC_SUFFIXES)
        return tuple(roots)

    def named_explicitly(self, path: Path) -> bool:
        return path.resolve() in self._explicit_paths

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> SpecFile | None:
        if file_path.suffix.lower() not in SPEC_SUFFIXES:
            return None
        resolved = file_path.resolve()
        if any(resolved == root or root in resolved.parents for root in self._spec_roots):
            return SpecFile.from_parent(parent, path=file_path)
        return None

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Tests that use the aibench fixture carry the aibench mark, as spec items do."""
        for item in items:
            if isinstance(item, pytest.Function) and "aibench" in item.fixturenames and \
                    item.get_closest_marker("aibench") is None:
                item.add_marker("aibench")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and report.nodeid not in self.broken_specs:
            self._other_collection_errors += 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """A broken spec is an error of its own file only: when every collection error came
        from a spec, the other items still run (pytest would stop them all)."""
        if self.broken_specs and not self._other_collection_errors:
            session.config.option.continue_on_collection_errors = True

    @cached_property
    def devices(self) -> list[DeviceInfo]:
        """The fleet, listed once by the controller; xdist workers receive its list."""
        shipped = getattr(self.config, "workerinput", {}).get(_WORKER_DEVICES)
        if shipped is not None:
            return [DeviceInfo.from_dict(entry) for entry in shipped]
        return fleet(self.settings, self.scratch)

    # -- running ---------------------------------------------------------------------------

    @cached_property
    def scratch(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="pytest-aibench-"))

    @cached_property
    def cache(self) -> ModelCache:
        return ModelCache(
            root=self.settings.model_cache, root_model_dir=self.settings.root_model_dir,
            timeout=self.settings.download_timeout, progress=self._download_progress,
        )

    def lease(self, candidates: tuple[DeviceInfo, ...]) -> contextlib.AbstractContextManager[
            DeviceInfo]:
        """A lease on the first free device of ``candidates``, said while it is waited for."""
        settings = self.settings
        return lease_any(candidates, settings.lease_dir or DEFAULT_LEASES,
                         timeout=settings.lease_timeout, notify=self.tell)

    def open_device(self, info: DeviceInfo) -> Device:
        if info.id not in self._devices:
            settings = self.settings
            apps = self.config.hook.pytest_aibench_ios_apps(config=self.config, device=info) \
                if info.kind == "ios" else None
            device = open_device(info, settings, self.scratch, apps)
            reboot = getattr(device, "reboot", None)
            if settings.reboot and reboot is not None:
                reboot(settings.adb_port)
            set_frequency = getattr(device, "set_frequency", None)
            if settings.set_freq and set_frequency is not None:
                set_frequency(settings.set_freq)
            self._devices[info.id] = device
        return self._devices[info.id]

    @cached_property
    def host(self) -> Device:
        """The machine pytest runs on, where preprocess and postprocess steps run (probed once:
        its CPU model comes from /proc/cpuinfo)."""
        return self.open_device(host_info(self.settings.platform_sig))

    def runner_for(self, case: Case) -> Runner:
        runner: Runner | None = self.config.hook.pytest_aibench_runner(
            config=self.config, framework=case.framework
        )
        if runner is None:
            factory = BUILTIN_RUNNERS.get(case.framework)
            if factory is None:  # a typo must not pass CI as a skip
                pytest.fail(
                    f"{case.where}: no runner for framework {case.framework!r} (model format "
                    f"{case.format!r}) is installed; runners here: "
                    f"{', '.join(sorted(BUILTIN_RUNNERS))}. A plugin adds one with the "
                    "pytest_aibench_runner hook", pytrace=False
                )
            runner = factory()
        reason = runner.unavailable(case, self.settings.program)
        if reason:
            pytest.skip(reason)
        return runner

    def model_md5(self, files: CaseFiles) -> dict[str, str]:
        """The MD5 of each model file (remembered by size and mtime: hashed once)."""
        return {ref.name: self.cache.md5(path) for ref, path in files.model if path.is_file()}

    def fetch_files(self, case: Case) -> CaseFiles:
        return CaseFiles(
            model=tuple((ref, self.cache.fetch(ref, case)) for ref in case.model_files),
            inputs=tuple((ref, self.cache.fetch(ref, case)) for ref in case.input_files
                         if not ref.is_generated),  # made at run time ({HOSTDIR}/x)
            goldens=tuple((ref, self.cache.fetch(ref, case)) for ref in case.golden_files),
        )

    def new_recorder(self, item: pytest.Item) -> Recorder:
        mark = item.get_closest_marker("aibench")
        options = dict(mark.kwargs) if mark else {}
        iterations = options.get("iterations") or self.settings.iterations or FIXTURE_ITERATIONS
        warmup = options.get("warmup", self.settings.warmup)
        return Recorder(int(iterations), FIXTURE_WARMUP if warmup is None else int(warmup))

    def _download_progress(self, url: str, done: int, total: int | None) -> None:
        if (total or done) < 4 * _MIB:
            return
        size = f"{done / _MIB:.1f} of {total / _MIB:.1f} MiB" if total else f"{done / _MIB:.1f} MiB"
        self.tell(f"aibench: downloading {url}: {size}")

    def tell(self, line: str) -> None:
        """A line for the user while an item runs (a download, a wait for a device)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if capture is None:
            return
        with capture.global_and_fixture_disabled():
            if is_worker(self.config):
                # An xdist worker's terminal output is dropped, but its stderr is the
                # controller's: the user sees the line as it happens.
                worker = getattr(self.config, "workerinput", {}).get("workerid", "worker")
                print(f"[{worker}] {line}", file=sys.stderr, flush=True)
            elif reporter is not None:
                reporter.write_line(line)

    # -- reporting -------------------------------------------------------------------------

    def _payload(self, item: pytest.Item) -> dict[str, Any] | None:
        recorder, case = item.stash.get(RECORDER, None), item.stash.get(CASE, None)
        if case is None and (recorder is None or not recorder.records):
            return None
        statistics = tuple(case.test.get("statistics", DEFAULT_STATISTICS)) if case else \
            DEFAULT_STATISTICS
        device = item.stash.get(DEVICE, None)
        payload = {
            "case": self._describe(case, item.stash.get(MODEL_MD5, {})) if case else None,
            "device": device.to_dict() if device else None,
            "device_state": item.stash.get(DEVICE_STATE, {}),
            **(recorder or Recorder(1, 0)).results(statistics),
        }
        # Plain JSON types only: xdist's serialiser refuses numpy scalars and str subclasses such
        # as torch's version string, and the run file is JSON anyway.
        # NaN and infinities become null here, once, so every output after this is valid JSON.
        return cast("dict[str, Any]", json.loads(json.dumps(finite(payload), default=str)))

    def _describe(self, case: Case, model_md5: dict[str, str]) -> dict[str, Any]:
        root = self.config.rootpath
        return {
            "model": case.name, "identifier": case.identifier, "index": case.index,
            "framework": case.framework, "format": case.format, "metric": case.metric,
            "spec": _relative(case.spec_path, root), "source": _relative(case.source, root),
            # the workload, which a comparison must find unchanged (compare.what_changed)
            "inputs": {name: spec["shapes"][0] for name, spec in
                       (case.test.get("inputs") or {}).items()},
            "model_md5": model_md5,
        }

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when == "call" or (call.when == "setup" and report.outcome != "passed"):
            try:
                self._record(item, report, call.when)
            except Exception as exc:  # a bug of ours costs this item, never the session
                report.outcome = "failed"
                report.longrepr = f"aibench: could not record this item's results: " \
                                  f"{type(exc).__name__}: {exc}"
        return report

    def _record(self, item: pytest.Item, report: pytest.TestReport, when: str) -> None:
        payload = self._payload(item)
        if payload is not None:
            if when == "call" and self.control is not None and "comparison" not in payload:
                self._judge(report, payload, self.control)
            _fail_on_non_finite(report, payload)
            setattr(report, REPORT_ATTRIBUTE, payload)

    def _judge(self, report: pytest.TestReport, payload: dict[str, Any],
               control: ControlRun) -> None:
        """Compare the item with its control; a regression (or a refused comparison) fails a
        passing item with the verdict's explanation."""
        judgement = control.judge({"nodeid": report.nodeid, **payload})
        payload["comparison"] = judgement.state
        payload["verdicts"] = [verdict.to_dict() for verdict in judgement.verdicts]
        if judgement.failure and report.passed:
            report.outcome = "failed"
            report.longrepr = judgement.failure

    @cached_property
    def storage(self) -> Path:
        return self.settings.storage or self.config.rootpath / ".aibench"

    @property
    def traces(self) -> Path:
        return self.settings.traces or self.storage / "traces"

    @cached_property
    def control_path(self) -> Path | None:
        """The run file --aibench-compare names (found by the controller, whose choice the
        xdist workers receive, so that a run saved meanwhile cannot change it)."""
        selector = self.settings.compare
        if not selector:
            return None
        shipped = getattr(self.config, "workerinput", {}).get(_WORKER_CONTROL)
        try:
            return Path(shipped) if shipped else find_run(self.storage, selector)
        except ValueError as exc:
            raise pytest.UsageError(f"--aibench-compare: {exc}") from None

    @cached_property
    def control(self) -> ControlRun | None:
        path = self.control_path
        if path is None:
            return None
        try:
            run = read_run(path)
        except (OSError, ValueError) as exc:
            raise pytest.UsageError(f"--aibench-compare: {exc}") from None
        settings = self.settings
        return ControlRun.of(path.name, run, rules=settings.fail_on,
                             min_effect=settings.min_effect, alpha=settings.alpha,
                             force=settings.compare_force, defer_failures=settings.fdr)

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        """With -v, what was measured and where, after PASSED or FAILED (xdist too: the
        controller makes this line from the worker's report)."""
        payload = getattr(report, REPORT_ATTRIBUTE, None)
        if (report.when != "call" or not payload or config.get_verbosity() < 1
                or hasattr(report, "wasxfail") or report.skipped):
            return None
        detail = headline(payload)
        if not detail:
            return None
        word, letter = ("PASSED", ".") if report.passed else ("FAILED", "F")
        return report.outcome, letter, (f"{word} [{detail}]", {"green" if report.passed
                                                               else "red": True})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = cast("dict[str, Any] | None", getattr(report, REPORT_ATTRIBUTE, None))
        if payload is None or report.when == "teardown":
            return
        outcome = report.outcome if report.when == "call" else (
            "skipped" if report.skipped else "error")
        self.results[report.nodeid] = {
            "nodeid": report.nodeid, "outcome": outcome, "duration": report.duration, **payload,
        }

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if is_worker(self.config):
            return
        if self.settings.fdr and self.control is not None:
            self._deferred_regressions(session)
        measured = any(item["metrics"] for item in self.results.values())
        if not (measured or wants_run_files(self.settings)):
            return
        run = build_run(
            self.results.values(), machine=machine_info(cpu_model()),
            commit=commit_info(self.config.rootpath),
            plugin={"name": "pytest-aibench", "version": __version__,
                    "pytest": pytest.__version__},
        )
        if session.exitstatus == pytest.ExitCode.INTERRUPTED:
            self.published = publish_partial(run, self.storage)
            return
        self.published = publish(run, self.settings, storage=self.storage,
                                 control_items=self.control.items.values() if self.control
                                 else ())
        if self.published.errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR  # an output path that is unusable

    def _deferred_regressions(self, session: pytest.Session) -> None:
        """With --aibench-fdr, regressions stand only after Benjamini-Hochberg over the run."""
        verdicts = [verdict for item in self.results.values()
                    for verdict in item.get("verdicts", [])]
        regressed = adjust_for_many(verdicts, self.settings.alpha)
        if regressed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if is_worker(self.config):
            return
        self._tables(terminalreporter)
        self._unparsed_rows(terminalreporter)
        for line in self.published.lines:
            terminalreporter.write_line(line)
        for line in self.published.errors:
            terminalreporter.write_line(line, red=True, bold=True)
        for path in self.published.written:
            terminalreporter.write_line(f"aibench: wrote {path}")

    def _unparsed_rows(self, terminalreporter: Any) -> None:
        """Observer rows whose JSON did not parse: how many, where, and the first of them."""
        for item in self.results.values():
            unparsed = (item.get("extra") or {}).get("unparsed_rows")
            if unparsed:
                terminalreporter.write_line(
                    f"aibench: {item['nodeid']}: {unparsed['count']} observer row(s) could not "
                    f"be parsed and were left out, e.g. {unparsed['examples'][0]!r}", yellow=True)

    def _tables(self, terminalreporter: Any) -> None:
        compared = self.control is not None or any("comparison" in item
                                                   for item in self.results.values())
        rows = summary_rows(self.results.values(), compared)
        if not rows:
            return
        measured = sum(1 for item in self.results.values() if item["metrics"])
        terminalreporter.write_sep("-", f"aibench: {len(rows)} metric rows from {measured} items")
        header, text = (COMPARE_COLUMNS, (0, 1, 7, 10)) if compared else (COLUMNS, (0, 1, 7))
        for line in render_table(rows, header, text):
            terminalreporter.write_line(line)
        operators = operator_rows(self.results.values(), self.settings.ops)
        if operators:
            terminalreporter.write_sep("-", f"aibench: top {self.settings.ops} operators per item")
            for line in render_table(operators, OPERATOR_COLUMNS, text_columns=(0, 1, 2)):
                terminalreporter.write_line(line)
        self._comparison_summary(terminalreporter)

    def _comparison_summary(self, terminalreporter: Any) -> None:
        control = self.control
        if control is None:
            return
        items = self.results.values()

        def state(name: str) -> list[str]:
            return sorted(item["nodeid"] for item in items if item.get("comparison") == name)

        gone = control.unseen({item_key(item) for item in items})
        for label, nodeids in (("not in the control run", state("unmatched")),
                               ("whose inputs or model files changed", state("changed")),
                               ("in the control run only", gone)):
            if nodeids:
                terminalreporter.write_line(f"aibench: {len(nodeids)} items {label} (reported, "
                                            f"not judged): {', '.join(nodeids)}")
        regressed = [verdict for item in items for verdict in item.get("verdicts", [])
                     if verdict["status"] == "regressed"]
        terminalreporter.write_line(f"aibench: compared with {control.name}: "
                                    f"{len(regressed)} regression(s)")

    def pytest_unconfigure(self) -> None:
        for device in self._devices.values():
            close = getattr(device, "close", None)
            if close is not None:
                close()
        if "scratch" in self.__dict__:
            shutil.rmtree(self.scratch, ignore_errors=True)


class _XdistHooks:
    """Registered only when pytest-xdist is active."""

    def __init__(self, session: AibenchSession) -> None:
        self.session = session

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[_WORKER_DEVICES] = [d.to_dict() for d in self.session.devices]
        if self.session.control_path is not None:
            node.workerinput[_WORKER_CONTROL] = str(self.session.control_path)


def _fail_on_non_finite(report: pytest.TestReport, payload: dict[str, Any]) -> None:
    """A NaN or infinite measurement fails its item (its other samples are still kept)."""
    bad = [f"{metric['type']} {metric['metric']}: "
           + ", ".join(f"{count} {kind}" for kind, count in metric["non_finite"].items())
           for metric in payload.get("metrics", []) if metric.get("non_finite")]
    if bad and report.passed:
        report.outcome = "failed"
        report.longrepr = ("aibench: measurements that are not finite numbers (kept out of the "
                           "statistics, counted in the run file as non_finite): " + "; ".join(bad))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


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
    read = getattr(device, "state", None)
    if read is None:
        return {}
    state: dict[str, float] = read()
    deadline = time.monotonic() + TEMPERATURE_WAIT_S
    while (max_temperature is not None and state.get("temperature_c", 0) > max_temperature
           and time.monotonic() < deadline):
        time.sleep(TEMPERATURE_POLL_S)
        state = read()
    return state


@pytest.fixture
def aibench_files(request: pytest.FixtureRequest, aibench_case: Case,
                  aibench_session: AibenchSession) -> CaseFiles:
    """Host paths of the case's model and input files, downloaded and MD5-checked."""
    with _one_paragraph():
        files = aibench_session.fetch_files(aibench_case)
    request.node.stash[MODEL_MD5] = aibench_session.model_md5(files)
    return files


@pytest.fixture
def aibench(request: pytest.FixtureRequest,
            aibench_session: AibenchSession) -> Iterator[Recorder]:
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
