"""pytest-aibench: benchmark ML models on real devices from pytest.

FAI-PEP spec files become pytest items (``pytest --aibench-spec PATH``); the ``aibench`` fixture
times any callable; every metric keeps its raw samples and FAI-PEP's statistics.

The public API, for users and for authors of runners, device kinds and reporters, is
``__all__`` (docs/architecture.md says what each name is for). Its names are imported when first
used, so that the plugin's start-up, which every pytest run in the environment pays, loads none
of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module (under this package) that defines it
_PUBLIC = {
    "AibenchError": "errors",
    "SpecError": "errors",
    "CacheError": "errors",
    "DeviceError": "errors",
    "RunnerError": "errors",
    "MetricRecord": "metrics",
    "OperatorRecord": "metrics",
    "summarize": "metrics",
    "Recorder": "recorder",
    "Case": "spec.model",
    "FileRef": "spec.model",
    "Runner": "runners.base",
    "RunsCommands": "runners.base",
    "RunContext": "runners.base",
    "CaseFiles": "runners.base",
    "GenericRunner": "runners.generic",
    "Device": "devices.base",
    "DeviceDefaults": "devices.base",
    "DeviceInfo": "devices.base",
    "CommandResult": "devices.base",
    "Verdict": "verdicts.statistics",
    "read_run": "runfile",
}

__all__ = [
    "AibenchError",
    "CacheError",
    "Case",
    "CaseFiles",
    "CommandResult",
    "Device",
    "DeviceDefaults",
    "DeviceError",
    "DeviceInfo",
    "FileRef",
    "GenericRunner",
    "MetricRecord",
    "OperatorRecord",
    "Recorder",
    "RunContext",
    "Runner",
    "RunnerError",
    "RunsCommands",
    "SpecError",
    "Verdict",
    "__version__",
    "read_run",
    "summarize",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # found once; later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


if TYPE_CHECKING:
    from .devices.base import CommandResult, Device, DeviceDefaults, DeviceInfo
    from .errors import AibenchError, CacheError, DeviceError, RunnerError, SpecError
    from .metrics import MetricRecord, OperatorRecord, summarize
    from .recorder import Recorder
    from .runfile import read_run
    from .runners.base import CaseFiles, RunContext, Runner, RunsCommands
    from .runners.generic import GenericRunner
    from .spec.model import Case, FileRef
    from .verdicts.statistics import Verdict
