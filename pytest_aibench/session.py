"""The run's shared state, and nothing else: the settings, scratch and storage folders, the
fleet, the model cache, the control run and the items' records. The role objects that hold
the hooks (collector.SpecCollector, items.ItemRecorder, run_end.RunEnd,
reporting.terminal_hooks.TerminalHooks, xdist.XdistHooks) share one :class:`RunState`, kept
in ``config.stash``; plugin.py makes and registers them."""

from __future__ import annotations

import shutil
import sys
import tempfile
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import Settings
from .stash import SESSION

if TYPE_CHECKING:
    from .cache import ModelCache
    from .devices.fleet import Fleet
    from .records import ItemRecord
    from .reporting.publish import Published
    from .spec.model import Case
    from .verdicts.agreement import Row
    from .verdicts.gate import ControlRun

# What each cached part needs is imported by the property that makes it: a pytest run that
# uses none of it must not pay for loading it.

WORKER_DEVICES = "aibench_devices"
WORKER_CONTROL = "aibench_control"
_MIB = 1 << 20


def run_state(config: pytest.Config) -> RunState:
    return config.stash[SESSION]


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def worker_input(config: pytest.Config) -> dict[str, Any]:
    """What the xdist controller sent this worker (xdist.py); empty outside a worker."""
    sent: dict[str, Any] = getattr(config, "workerinput", {})
    return sent


class RunState:
    """What the role objects of one pytest run share."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.results: dict[str, ItemRecord] = {}  # by node id, as the reports arrive
        self.agreement: list[Row] = []  # --aibench-reference, computed as the run ends
        # (model, test identifier) -> the framework a spec made that network's golden
        self.references: dict[tuple[str, str], str] = {}
        self.published: Published | None = None  # what the session's end wrote

    @cached_property
    def scratch(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="pytest-aibench-"))

    @cached_property
    def storage(self) -> Path:
        return self.settings.storage_under(self.config.rootpath)

    @property
    def traces(self) -> Path:
        return self.settings.traces or self.storage / "traces"

    @cached_property
    def fleet(self) -> Fleet:
        """The devices, listed once by the controller; xdist workers receive its list."""
        from .devices.fleet import Fleet

        config = self.config
        return Fleet(
            self.settings,
            self.scratch,
            self.storage,
            listed=worker_input(config).get(WORKER_DEVICES),
            notify=self.tell,
            ios_apps=lambda info: config.hook.pytest_aibench_ios_apps(config=config, device=info),
        )

    @cached_property
    def cache(self) -> ModelCache:
        from .cache import ModelCache

        return ModelCache(
            root=self.settings.model_cache,
            root_model_dir=self.settings.root_model_dir,
            timeout=self.settings.download_timeout,
            progress=self._download_progress,
        )

    @cached_property
    def control_paths(self) -> list[Path]:
        """The run files --aibench-compare names, oldest first (found by the controller, whose
        choice the xdist workers receive, so that a run saved meanwhile cannot change it)."""
        shipped = worker_input(self.config).get(WORKER_CONTROL)
        if shipped:
            return [Path(path) for path in shipped]
        if not self.settings.compare:
            return []  # and no run-file reader loaded, as in a plain `pytest -n 2`
        from .verdicts.control import control_paths

        return control_paths(self.settings, self.storage)

    @cached_property
    def control(self) -> ControlRun | None:
        if not self.settings.compare:
            return None
        from .verdicts.control import load_control

        return load_control(self.settings, self.storage, self.control_paths)

    def outputs_for(self, case: Case) -> Path | None:
        """Where the case keeps its outputs for the agreement across frameworks (None: no
        --aibench-reference, and no spec names a reference for its network)."""
        wanted = self.settings.reference or (case.name, case.identifier) in self.references
        return self.storage / "outputs" if wanted else None

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

    def close(self) -> None:
        """The run's end: devices closed, the scratch folder removed."""
        if "fleet" in self.__dict__:
            self.fleet.close()
        if "scratch" in self.__dict__:
            shutil.rmtree(self.scratch, ignore_errors=True)
