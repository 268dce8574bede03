"""pytest-aibench: benchmark ML models on real devices from pytest.

FAI-PEP spec files become pytest items (``pytest --aibench-spec PATH``); the ``aibench`` fixture
times any callable; every metric keeps its raw samples and FAI-PEP's statistics.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import AibenchError, CacheError, DeviceError, RunnerError, SpecError
from .metrics import MetricRecord, summarize
from .recorder import Recorder

__all__ = [
    "AibenchError",
    "CacheError",
    "DeviceError",
    "MetricRecord",
    "Recorder",
    "RunnerError",
    "SpecError",
    "__version__",
    "summarize",
]
