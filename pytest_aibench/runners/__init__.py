"""Framework runners. Each imports its framework only when it runs."""

from __future__ import annotations

from collections.abc import Callable

from .base import CaseFiles, RunContext, Runner
from .executorch import ExecutorchRunner
from .genai import GenaiRunner
from .generic import GenericRunner
from .observer_program import ObserverProgramRunner
from .onnxruntime import OnnxRuntimeRunner
from .pytorch import PytorchRunner
from .tflite import TfliteRunner

BUILTIN_RUNNERS: dict[str, Callable[[], Runner]] = {
    "caffe2": ObserverProgramRunner,
    "executorch": ExecutorchRunner,
    "genai": GenaiRunner,
    "generic": GenericRunner,
    "onnxruntime": OnnxRuntimeRunner,
    "pytorch": PytorchRunner,
    "tflite": TfliteRunner,
}

__all__ = [
    "BUILTIN_RUNNERS",
    "CaseFiles",
    "ExecutorchRunner",
    "GenaiRunner",
    "GenericRunner",
    "ObserverProgramRunner",
    "OnnxRuntimeRunner",
    "PytorchRunner",
    "RunContext",
    "Runner",
    "TfliteRunner",
]
