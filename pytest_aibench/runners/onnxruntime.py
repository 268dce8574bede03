"""ONNX Runtime, in process on the host.

Timed runs first (one ``session.run`` per sample), then a separate profiled session for
per-operator times, so profiling never slows the whole-net numbers. Session settings come from
the test's ``onnxruntime`` object and are recorded with the results; with the optimisation level
``disable`` the operators are the model's own nodes instead of fused kernels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import RunnerError, Unsupported
from ..parsers.ort_profile import after_warmup, mean_run_time, operators_from_profile
from ..spec.model import Case
from .base import RunContext
from .inprocess import (
    PROFILE_WARMUP,
    ColdStart,
    checked,
    make_inputs,
    missing,
    model_path,
    profiled_runs,
    time_runs,
)
from .outputs import check_outputs

_OPTIMIZATION_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
THREAD_KNOBS = ("intra_op_num_threads", "inter_op_num_threads")


def _alternating(session_options: Any, threads: int | None) -> dict[str, Any]:
    """A/B: the other side's session runs between this one's calls, in the same process.
    Its threads must not spin idle, which takes the running side's CPUs (two threads each on
    two CPUs: pairs spread 55% with spinning, 1.2% without, the median call the same), and
    each session's pool threads sit on the same CPUs as the other's: left to the scheduler,
    two sessions on a machine with a busy process differed by -35% to +39% for good (their
    pool threads landed on different CPUs); pinned alike, by 0.2-1.9%."""
    session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    chosen: dict[str, Any] = {"intra_op_spinning": False}
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if threads and 1 < threads <= len(cpus):
        # ONNX Runtime numbers processors from 1 and leaves the calling thread unpinned
        places = ";".join(str(cpu + 1) for cpu in cpus[1:threads])
        session_options.add_session_config_entry("session.intra_op_thread_affinities", places)
        chosen["intra_op_thread_affinities"] = places
    return chosen


# --aibench-backend: the execution provider, with the CPU for what it does not run
_PROVIDER_OF = {
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "nnapi": "NnapiExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "dnnl": "DnnlExecutionProvider",
    "onednn": "DnnlExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "directml": "DmlExecutionProvider",
}


def providers_for(backend: str) -> list[str]:
    if backend == "cpu":
        return ["CPUExecutionProvider"]
    if backend not in _PROVIDER_OF:  # a benchmark_model delegate or a program's library
        raise Unsupported(
            f"--aibench-backend {backend} is no ONNX Runtime execution provider "
            f"(it knows cpu, {', '.join(_PROVIDER_OF)})"
        )
    return [_PROVIDER_OF[backend], "CPUExecutionProvider"]


class OnnxRuntimeRunner:
    name = "onnxruntime"

    def unavailable(self, case: Case, program: str | None) -> str | None:
        return missing("onnxruntime", "onnx")

    def run(self, context: RunContext) -> None:
        if not context.device.local:
            raise Unsupported(
                f"the onnxruntime runner runs in this process, on the host only, not on "
                f"{context.device.info.kind} devices"
            )
        cold = ColdStart(context)
        session = cold.load(lambda: self._session(context))
        cold.loaded()
        feeds = make_inputs(context, [(i.name, i.shape, i.type) for i in session.get_inputs()])
        first = cold.first(lambda: session.run(None, feeds))
        outputs = time_runs(context, lambda: session.run(None, feeds))
        cold.memory()
        self._profile_operators(context, feeds)
        names = [output.name for output in session.get_outputs()]
        check_outputs(context, dict(zip(names, checked(context, first, outputs), strict=True)))

    def _options(self, context: RunContext) -> dict[str, Any]:
        return dict(context.case.test.get("onnxruntime") or {})

    def _providers(self, context: RunContext) -> list[str]:
        import onnxruntime as ort

        wanted = self._options(context).get("providers") or providers_for(context.backend)
        available = ort.get_available_providers()
        missing = [provider for provider in wanted if provider not in available]
        if missing:
            raise Unsupported(
                f"execution provider {missing[0]} is not in this onnxruntime build "
                f"(available: {', '.join(available)})"
            )
        return list(wanted)

    def _session(self, context: RunContext, profile_prefix: Path | None = None) -> Any:
        import onnxruntime as ort

        options = self._options(context)
        level = options.get("graph_optimization_level", "all")
        session_options = ort.SessionOptions()
        session_options.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, _OPTIMIZATION_LEVELS[level]
        )
        threads = {knob: int(options[knob]) for knob in THREAD_KNOBS if knob in options}
        if context.threads and not threads.get("intra_op_num_threads"):
            threads["intra_op_num_threads"] = context.threads  # A/B: the CPUs it is pinned to
        for knob, count in threads.items():
            setattr(session_options, knob, count)
        if context.alternating:
            threads.update(_alternating(session_options, threads.get("intra_op_num_threads")))
        if profile_prefix is not None:
            session_options.enable_profiling = True
            session_options.profile_file_prefix = str(profile_prefix)
        model = model_path(context, "model", "graph")
        try:
            session = ort.InferenceSession(
                str(model), session_options, providers=self._providers(context)
            )
        except (RunnerError, Unsupported):
            raise
        except Exception as exc:  # ORT raises its own unexported exception types
            raise RunnerError(
                f"{context.case.where}: onnxruntime cannot load {model}: {exc}"
            ) from None
        context.recorder.extra["backend"] = {
            "name": context.backend,
            "providers": session.get_providers(),
        }
        context.recorder.extra["onnxruntime"] = {
            "version": ort.__version__,
            "providers": session.get_providers(),
            "graph_optimization_level": level,
            **threads,
        }
        return session

    def _profile_operators(self, context: RunContext, feeds: dict[str, Any]) -> None:
        session = self._session(context, profile_prefix=context.hostdir / "ort_profile")
        runs = profiled_runs(context)
        for _ in range(PROFILE_WARMUP + runs):
            session.run(None, feeds)
        trace_path = Path(session.end_profiling())
        trace = after_warmup(json.loads(trace_path.read_text(encoding="utf-8")), PROFILE_WARMUP)
        trace_path.unlink()
        for operator in operators_from_profile(trace, runs):
            context.recorder.add_operator(operator)
        base = mean_run_time(trace)
        if base is not None:
            context.recorder.operator_bases.append(base)
