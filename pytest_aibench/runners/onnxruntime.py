"""ONNX Runtime, in process on the host: one timed ``session.run`` per sample.

Inputs are random with a fixed seed, shaped by the test's ``inputs`` (or the model's own input
shapes, symbolic dimensions taken as 1), or read from ``input_files`` (``.npy``, or text with one
number per line as FAI-PEP's golden files are). Session settings come from the test's
``onnxruntime`` object and are recorded with the results.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RunnerError
from .base import RunContext

if TYPE_CHECKING:  # numpy is imported when an ONNX item runs, not with pytest
    import numpy as np

SEED = 20180222
_NUMPY_TYPES = {
    "float": "float32", "float32": "float32", "float16": "float16", "double": "float64",
    "float64": "float64", "int8": "int8", "uint8": "uint8", "int16": "int16", "int32": "int32",
    "int": "int32", "int64": "int64", "long": "int64", "bool": "bool",
}
_OPTIMIZATION_LEVELS = {
    "disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL",
}


def numpy_type(name: str) -> np.dtype[Any]:
    """A dtype from a spec type (``float``) or an ORT type (``tensor(float)``)."""
    import numpy as np

    bare = name.removeprefix("tensor(").removesuffix(")")
    if bare not in _NUMPY_TYPES:
        raise RunnerError(
            f"input type {name!r} is not supported; use one of {sorted(_NUMPY_TYPES)}"
        )
    return np.dtype(_NUMPY_TYPES[bare])


def concrete_shape(dims: Sequence[Any]) -> list[int]:
    """Symbolic or unknown dimensions (``"batch"``, ``None``, ``"variable"``) become 1."""
    return [dim if isinstance(dim, int) and dim >= 0 else 1 for dim in dims]


def random_input(shape: Sequence[int], dtype: np.dtype[Any], rng: np.random.Generator) -> Any:
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    return rng.integers(0, 10, shape).astype(dtype)


def file_input(path: Path, shape: Sequence[int], dtype: np.dtype[Any]) -> Any:
    import numpy as np

    data = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, dtype=dtype, ndmin=1)
    try:
        return np.asarray(data, dtype=dtype).reshape(shape)
    except ValueError:
        raise RunnerError(
            f"input file {path} holds {np.size(data)} values, which do not fit shape {list(shape)}"
        ) from None


class OnnxRuntimeRunner:
    name = "onnxruntime"

    def unavailable(self) -> str | None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime is not installed: pip install 'pytest-aibench[onnx]'"
        return None

    def run(self, context: RunContext) -> None:
        if context.device.info.kind != "host":
            raise RunnerError(
                f"{context.case.where}: the onnxruntime runner runs in this process, on the "
                f"host only, not on {context.device.info.kind} devices"
            )
        session = self._session(context)
        feeds = self._feeds(context, session.get_inputs())
        for _ in range(context.warmup):
            session.run(None, feeds)
        samples = []
        clock = time.perf_counter_ns
        for _ in range(context.iterations):
            start = clock()
            session.run(None, feeds)
            samples.append((clock() - start) / 1000.0)
        context.recorder.record("NET", "latency", "us", samples)

    def _model_path(self, context: RunContext) -> Path:
        files = context.files.model_files()
        for name in ("model", "graph"):
            if name in files:
                return files[name]
        if len(files) == 1:
            return next(iter(files.values()))
        raise RunnerError(
            f"{context.case.spec_path} model.files: expected the ONNX file under 'model' (or a "
            f"single file), found {sorted(files) or 'no files'}"
        )

    def _session(self, context: RunContext) -> Any:
        import onnxruntime as ort

        options = dict(context.case.test.get("onnxruntime") or {})
        session_options = ort.SessionOptions()
        level = options.get("graph_optimization_level", "all")
        session_options.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, _OPTIMIZATION_LEVELS[level]
        )
        for knob in ("intra_op_num_threads", "inter_op_num_threads"):
            if knob in options:
                setattr(session_options, knob, int(options[knob]))
        providers = options.get("providers") or ["CPUExecutionProvider"]
        try:
            session = ort.InferenceSession(
                str(self._model_path(context)), session_options, providers=providers
            )
        except Exception as exc:  # ORT raises its own unexported exception types
            raise RunnerError(f"{context.case.where}: onnxruntime cannot load the model: {exc}") \
                from None
        context.recorder.extra["onnxruntime"] = {
            "version": ort.__version__, "providers": session.get_providers(),
            "graph_optimization_level": level,
            **{k: options[k] for k in ("intra_op_num_threads", "inter_op_num_threads")
               if k in options},
        }
        return session

    def _feeds(self, context: RunContext, inputs: Sequence[Any]) -> dict[str, Any]:
        import numpy as np

        declared: Mapping[str, Any] = context.case.test.get("inputs") or {}
        rng = np.random.default_rng(SEED)
        feeds = {}
        for model_input in inputs:
            spec = declared.get(model_input.name, {})
            shape = concrete_shape(spec["shapes"][0] if spec else model_input.shape)
            dtype = numpy_type(spec.get("type") or model_input.type)
            files = context.files.input_paths(model_input.name)
            feeds[model_input.name] = (
                file_input(files[0], shape, dtype) if files else random_input(shape, dtype, rng)
            )
        context.recorder.extra["inputs"] = {
            name: {"shape": list(value.shape), "type": str(value.dtype)}
            for name, value in feeds.items()
        }
        return feeds
