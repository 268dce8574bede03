"""Per-run state: the settings, the fleet, the model cache, the control run and every item's
record, with the hooks that collect, record, judge and publish them. plugin.py registers one
:class:`AibenchSession` per pytest run and keeps it in ``config.stash``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
import tempfile
from collections.abc import Generator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from .errors import DeviceError
from .options import Settings
from .spec.reader import SPEC_SUFFIXES
from .stash import CASE, DEVICE, DEVICE_STATE, MODEL_MD5, RECORDER, REPORT_ATTRIBUTE, SESSION

if TYPE_CHECKING:
    from .cache import ModelCache
    from .collect import SpecFile
    from .devices.base import Device, DeviceInfo
    from .recorder import Recorder
    from .records import CaseDict, ItemRecord, Payload, RunFile
    from .reporting.publish import Published
    from .runners.base import CaseFiles, Runner
    from .spec.model import Case
    from .verdicts import ControlRun
    from .verdicts.agreement import Row

# Most of what a session does (the fleet, the cache, runners, verdicts, publishing) is imported
# by the method that does it: a pytest run that uses none of it must not pay for loading it.

FIXTURE_ITERATIONS = 50
FIXTURE_WARMUP = 5
WORKER_DEVICES = "aibench_devices"
WORKER_CONTROL = "aibench_control"
HISTORY_CONTROL = "history"  # --aibench-compare=history
_MIB = 1 << 20


def session_of(config: pytest.Config) -> AibenchSession:
    return config.stash[SESSION]


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def worker_input(config: pytest.Config) -> dict[str, Any]:
    """What the xdist controller sent this worker (xdist.py); empty outside a worker."""
    sent: dict[str, Any] = getattr(config, "workerinput", {})
    return sent


def fleet(settings: Settings, scratch: Path) -> list[DeviceInfo]:
    """The devices --aibench-devices names, probed; a usage error for one that is not there."""
    from .devices.fleet import discover

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
        raise pytest.UsageError(f"--aibench-hash-platform-mapping {mapping_file}: {exc}") from None
    if not isinstance(names, dict):
        raise pytest.UsageError(
            f"--aibench-hash-platform-mapping {mapping_file}: expected a "
            "JSON object of device hash to platform name"
        )
    return [dataclasses.replace(d, name=str(names.get(d.hash, d.name))) for d in devices]


class AibenchSession:
    """Per-run state: settings, the fleet, the model cache and the results of every item."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.results: dict[str, ItemRecord] = {}
        self.agreement: list[Row] = []  # --aibench-reference, computed as the run ends
        self.broken_specs: set[str] = set()
        self.references: dict[tuple[str, str], str] = {}
        self._other_collection_errors = 0
        self._devices: dict[str, Device] = {}
        self.published: Published | None = None  # what the session's end wrote

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
        else:  # specs from the ini file join the default paths, unless those hold them already
            # (pytest 8.0 collects only the inner one of two nested arguments)
            self.config.args.extend(arg for arg in named if not self._under_args(Path(arg)))

    def _arg_paths(self) -> set[Path]:
        invoked = self.config.invocation_params.dir
        return {(invoked / arg.split("::")[0]).resolve() for arg in self.config.args}

    def _under_args(self, path: Path) -> bool:
        return any(path == folder or folder in path.parents for folder in self._arg_paths())

    @cached_property
    def _explicit_paths(self) -> set[Path]:
        return self._arg_paths()  # read at collection, once add_spec_args has run

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
            from .collect import SpecFile

            return SpecFile.from_parent(parent, path=file_path)
        return None

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Tests that use the aibench fixture carry the aibench mark, as spec items do."""
        for item in items:
            if (
                isinstance(item, pytest.Function)
                and "aibench" in item.fixturenames
                and item.get_closest_marker("aibench") is None
            ):
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
        from .devices.base import DeviceInfo

        shipped = worker_input(self.config).get(WORKER_DEVICES)
        if shipped is not None:
            return [DeviceInfo.from_dict(entry) for entry in shipped]
        return fleet(self.settings, self.scratch)

    # -- running ---------------------------------------------------------------------------

    @cached_property
    def scratch(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="pytest-aibench-"))

    @cached_property
    def cache(self) -> ModelCache:
        from .cache import ModelCache

        return ModelCache(
            root=self.settings.model_cache,
            root_model_dir=self.settings.root_model_dir,
            timeout=self.settings.download_timeout,
            progress=self._download_progress,
        )

    def lease(
        self, candidates: tuple[DeviceInfo, ...]
    ) -> contextlib.AbstractContextManager[DeviceInfo]:
        """A lease on the first free device of ``candidates``, said while it is waited for."""
        from .devices.lease import DEFAULT_LEASES, lease_any
        from .reporting.publish import history_location

        settings = self.settings
        return lease_any(
            candidates,
            settings.lease_dir or DEFAULT_LEASES,
            timeout=settings.lease_timeout,
            notify=self.tell,
            store=history_location(settings, self.storage),
        )

    def open_device(self, info: DeviceInfo) -> Device:
        if info.id not in self._devices:
            from .devices.fleet import open_device

            settings = self.settings
            apps = (
                self.config.hook.pytest_aibench_ios_apps(config=self.config, device=info)
                if info.kind == "ios"
                else None
            )
            device = open_device(info, settings, self.scratch, apps)
            if settings.reboot:
                device.reboot()
            if settings.set_freq:
                device.set_frequency(settings.set_freq)
            self._devices[info.id] = device
        return self._devices[info.id]

    @cached_property
    def host(self) -> Device:
        """The machine pytest runs on, where preprocess and postprocess steps run (probed once:
        its CPU model comes from /proc/cpuinfo)."""
        from .devices.host import host_info

        return self.open_device(host_info(self.settings.platform_sig))

    def runner_for(self, case: Case) -> Runner:
        runner: Runner | None = self.config.hook.pytest_aibench_runner(
            config=self.config, framework=case.framework
        )
        if runner is None:
            from .runners import BUILTIN_RUNNERS

            factory = BUILTIN_RUNNERS.get(case.framework)
            if factory is None:  # a typo must not pass CI as a skip
                pytest.fail(
                    f"{case.where}: no runner for framework {case.framework!r} (model format "
                    f"{case.format!r}) is installed; runners here: "
                    f"{', '.join(sorted(BUILTIN_RUNNERS))}. A plugin adds one with the "
                    "pytest_aibench_runner hook",
                    pytrace=False,
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
        from .runners.base import CaseFiles

        return CaseFiles(
            model=tuple((ref, self.cache.fetch(ref, case)) for ref in case.model_files),
            inputs=tuple(
                (ref, self.cache.fetch(ref, case))
                for ref in case.input_files
                if not ref.is_generated
            ),  # made at run time ({HOSTDIR}/x)
            goldens=tuple((ref, self.cache.fetch(ref, case)) for ref in case.golden_files),
        )

    def control_files(self, files: CaseFiles) -> CaseFiles | None:
        """A/B: the case's files as the control root holds them (--aibench-ab-control-root)."""
        root = self.settings.ab_control_root
        if root is None:
            return None
        from .ab.sides import files_under

        return files_under(files, self.config.rootpath, root)

    def new_recorder(self, item: pytest.Item) -> Recorder:
        from .recorder import Recorder

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
                worker = worker_input(self.config).get("workerid", "worker")
                print(f"[{worker}] {line}", file=sys.stderr, flush=True)
            elif reporter is not None:
                reporter.write_line(line)

    # -- reporting -------------------------------------------------------------------------

    def _payload(self, item: pytest.Item) -> Payload | None:
        from .atomic import finite
        from .metrics import DEFAULT_STATISTICS
        from .recorder import Recorder

        recorder, case = item.stash.get(RECORDER, None), item.stash.get(CASE, None)
        if case is None and (recorder is None or not recorder.records):
            return None
        statistics = (
            tuple(case.test.get("statistics", DEFAULT_STATISTICS)) if case else DEFAULT_STATISTICS
        )
        device = item.stash.get(DEVICE, None)
        payload: Payload = {
            **(recorder or Recorder(1, 0)).results(statistics),
            "case": self._describe(case, item.stash.get(MODEL_MD5, {})) if case else None,
            "device": device.to_dict() if device else None,
            "device_state": item.stash.get(DEVICE_STATE, {}),
        }
        # Plain JSON types only: xdist's serialiser refuses numpy scalars and str subclasses such
        # as torch's version string, and the run file is JSON anyway.
        # NaN and infinities become null here, once, so every output after this is valid JSON.
        return cast("Payload", json.loads(json.dumps(finite(payload), default=str)))

    def _describe(self, case: Case, model_md5: dict[str, str]) -> CaseDict:
        root = self.config.rootpath
        described: CaseDict = {
            "model": case.name,
            "identifier": case.identifier,
            "index": case.index,
            "framework": case.framework,
            "format": case.format,
            "metric": case.metric,
            "spec": _relative(case.spec_path, root),
            "source": _relative(case.source, root),
            # the workload, which a comparison must find unchanged (verdicts.gate.what_changed)
            "inputs": {
                name: spec["shapes"][0] for name, spec in (case.test.get("inputs") or {}).items()
            },
            "model_md5": model_md5,
        }
        if case.reference:
            described["reference"] = case.reference
        if case.layout:
            described["layout"] = case.layout
        if case.match:
            described["match"] = case.match
        return described

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
                report.longrepr = (
                    f"aibench: could not record this item's results: {type(exc).__name__}: {exc}"
                )
        return report

    def _record(self, item: pytest.Item, report: pytest.TestReport, when: str) -> None:
        payload = self._payload(item)
        if payload is not None:
            if when == "call" and self.control is not None and "comparison" not in payload:
                self._judge(report, payload, self.control)
            _fail_on_non_finite(report, payload)
            setattr(report, REPORT_ATTRIBUTE, payload)

    def _judge(self, report: pytest.TestReport, payload: Payload, control: ControlRun) -> None:
        """Compare the item with its control; a regression (or a refused comparison) fails a
        passing item with the verdict's explanation."""
        judgement = control.judge(report.nodeid, payload)
        payload["comparison"] = judgement.state
        payload["verdicts"] = [verdict.to_dict() for verdict in judgement.verdicts]
        if judgement.failure and report.passed:
            report.outcome = "failed"
            report.longrepr = judgement.failure

    @cached_property
    def storage(self) -> Path:
        return self.settings.storage or self.config.rootpath / ".aibench"

    def outputs_for(self, case: Case) -> Path | None:
        """Where the case keeps its outputs for the agreement across frameworks (None: no
        --aibench-reference, and no spec names a reference for its network)."""
        wanted = self.settings.reference or (case.name, case.identifier) in self.references
        return self.storage / "outputs" if wanted else None

    @property
    def traces(self) -> Path:
        return self.settings.traces or self.storage / "traces"

    @cached_property
    def control_paths(self) -> list[Path]:
        """The run files --aibench-compare (and --aibench-compare-runs) name, oldest first
        (found by the controller, whose choice the xdist workers receive, so that a run saved
        meanwhile cannot change it)."""
        selector = self.settings.compare
        if not selector or selector == HISTORY_CONTROL:
            return []
        from .reporting.runfile import find_runs

        shipped = worker_input(self.config).get(WORKER_CONTROL)
        if shipped:
            return [Path(path) for path in shipped]
        try:
            return find_runs(self.storage, selector, self.settings.compare_runs)
        except ValueError as exc:
            raise pytest.UsageError(f"--aibench-compare: {exc}") from None

    @cached_property
    def control(self) -> ControlRun | None:
        if self.settings.compare == HISTORY_CONTROL:
            return self._control_from_history()
        paths = self.control_paths
        if not paths:
            return None
        from .reporting.runfile import read_run

        try:
            runs = [read_run(path) for path in paths]
        except (OSError, ValueError) as exc:
            raise pytest.UsageError(f"--aibench-compare: {exc}") from None
        earlier = len(paths) - 1
        name = paths[-1].name + (
            f" and {earlier} earlier run{'s' * (earlier > 1)}" if earlier else ""
        )
        return self._control_run(name, runs)

    def _control_from_history(self) -> ControlRun:
        """``--aibench-compare=history``: the history store's last K runs (each item is judged
        against those of them that ran it on the same device model and model files)."""
        from .reporting import history
        from .reporting.publish import history_location
        from .reporting.store import exists, shown

        database = history_location(self.settings, self.storage)
        if database is None or not exists(database):
            where = shown(database) if database else "(--aibench-history=off)"
            raise pytest.UsageError(f"--aibench-compare=history: no history store at {where}")
        try:
            with history.connect(database, create=False) as db:
                runs = history.last_runs(db, self.settings.compare_runs)
        except Exception as exc:  # unreadable, unreachable, or holding no run
            raise pytest.UsageError(f"--aibench-compare=history: {history.problem(exc)}") from None
        return self._control_run(f"the history store's last {len(runs)} run(s)", runs)

    def _control_run(self, name: str, runs: list[RunFile]) -> ControlRun:
        from .verdicts import ControlRun

        settings = self.settings
        return ControlRun.of(
            name,
            runs,
            rules=settings.fail_on,
            min_effect=settings.min_effect,
            alpha=settings.alpha,
            force=settings.compare_force,
            defer_failures=settings.fdr,
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        """With -v, what was measured and where, after PASSED or FAILED (xdist too: the
        controller makes this line from the worker's report)."""
        payload = getattr(report, REPORT_ATTRIBUTE, None)
        if (
            report.when != "call"
            or not payload
            or config.get_verbosity() < 1
            or hasattr(report, "wasxfail")
            or report.skipped
        ):
            return None
        from .reporting.terminal import headline

        detail = headline(payload)
        if not detail:
            return None
        word, letter = ("PASSED", ".") if report.passed else ("FAILED", "F")
        return (
            report.outcome,
            letter,
            (f"{word} [{detail}]", {"green" if report.passed else "red": True}),
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = cast("Payload | None", getattr(report, REPORT_ATTRIBUTE, None))
        if payload is None or report.when == "teardown":
            return
        outcome = (
            report.outcome if report.when == "call" else ("skipped" if report.skipped else "error")
        )
        self.results[report.nodeid] = {
            "nodeid": report.nodeid,
            "outcome": outcome,
            "duration": report.duration,
            **payload,
        }

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if is_worker(self.config):
            return
        if self.settings.fdr and self.control is not None:
            self._deferred_regressions(session)
        named = any("reference" in (item["case"] or {}) for item in self.results.values())
        if self.settings.reference or named:
            from .verdicts.agreement import agree
            from .verdicts.golden import Tolerance

            tolerance = self.settings.error_tolerance or Tolerance()
            self.agreement = agree(self.results.values(), self.settings.reference, tolerance)
        measured = any(item["metrics"] for item in self.results.values())
        if not (measured or self.settings.wants_outputs):
            return
        self._publish(session)

    def _publish(self, session: pytest.Session) -> None:
        from . import __version__
        from .devices.host import cpu_model
        from .reporting.provenance import commit_info, machine_info
        from .reporting.publish import publish, publish_partial
        from .reporting.runfile import build_run

        run = build_run(
            self.results.values(),
            machine=machine_info(cpu_model()),
            commit=commit_info(self.config.rootpath),
            plugin={"name": "pytest-aibench", "version": __version__, "pytest": pytest.__version__},
            build=self.settings.build_info,
        )
        if session.exitstatus == pytest.ExitCode.INTERRUPTED:
            self.published = publish_partial(run, self.storage)
            return
        self.published = publish(
            run,
            self.settings,
            storage=self.storage,
            control_items=self.control.items.values() if self.control else (),
        )
        if self.published.errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR  # an output path that is unusable

    def _deferred_regressions(self, session: pytest.Session) -> None:
        """With --aibench-fdr, regressions stand only after Benjamini-Hochberg over the run."""
        from .verdicts import adjust_for_many

        verdicts = [
            verdict for item in self.results.values() for verdict in item.get("verdicts", [])
        ]
        regressed = adjust_for_many(verdicts, self.settings.alpha)
        if regressed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if is_worker(self.config) or not (self.results or self.published):
            return
        from .reporting.terminal import write_summary

        write_summary(
            terminalreporter, list(self.results.values()), self.control, self.settings.ops
        )
        if self.agreement:
            from .reporting.terminal import write_agreement

            write_agreement(terminalreporter, self.agreement)
        if self.published is None:
            return
        for line in self.published.lines:
            terminalreporter.write_line(line)
        for line in self.published.errors:
            terminalreporter.write_line(line, red=True, bold=True)
        for path in self.published.written:
            terminalreporter.write_line(f"aibench: wrote {path}")

    def pytest_unconfigure(self) -> None:
        for device in self._devices.values():
            device.close()
        if "scratch" in self.__dict__:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _fail_on_non_finite(report: pytest.TestReport, payload: Payload) -> None:
    """A NaN or infinite measurement fails its item (its other samples are still kept)."""
    bad = [
        f"{metric['type']} {metric['metric']}: "
        + ", ".join(f"{count} {kind}" for kind, count in metric["non_finite"].items())
        for metric in payload.get("metrics", [])
        if metric.get("non_finite")
    ]
    if bad and report.passed:
        report.outcome = "failed"
        report.longrepr = (
            "aibench: measurements that are not finite numbers (kept out of the "
            "statistics, counted in the run file as non_finite): " + "; ".join(bad)
        )


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
