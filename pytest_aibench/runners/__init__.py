"""Framework runners. Each imports its framework only when it runs."""

from __future__ import annotations

from .base import RunContext, Runner
from .generic import GenericRunner
from .onnxruntime import OnnxRuntimeRunner

BUILTIN_RUNNERS: dict[str, type[GenericRunner] | type[OnnxRuntimeRunner]] = {
    GenericRunner.name: GenericRunner,
    OnnxRuntimeRunner.name: OnnxRuntimeRunner,
}

__all__ = ["BUILTIN_RUNNERS", "GenericRunner", "OnnxRuntimeRunner", "RunContext", "Runner"]
