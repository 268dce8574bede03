"""Framework runners. Each imports its framework only when it runs."""

from __future__ import annotations

from .base import CaseFiles, RunContext, Runner
from .generic import GenericRunner
from .onnxruntime import OnnxRuntimeRunner
from .pytorch import PytorchRunner
from .tflite import TfliteRunner

BUILTIN_RUNNERS: dict[str, type[Runner]] = {
    runner.name: runner
    for runner in (GenericRunner, OnnxRuntimeRunner, PytorchRunner, TfliteRunner)
}

__all__ = ["BUILTIN_RUNNERS", "CaseFiles", "GenericRunner", "OnnxRuntimeRunner", "PytorchRunner",
           "RunContext", "Runner", "TfliteRunner"]
