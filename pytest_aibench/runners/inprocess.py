"""What the in-process runners (ONNX Runtime, LiteRT, TorchScript) share: inputs, timing."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import RunnerError
from ..tensors import (
    SEED,
    channels_first_shape,
    channels_last,
    concrete_shape,
    numpy_dtype,
    random_tensor,
    read_tensor,
)
from .base import RunContext
from .memory import PeakWatch

T = TypeVar("T")

# (name, shape as the model declares it, dtype name as the framework spells it); None where
# the model does not say (a TorchScript argument given by an input file)
Signature = Sequence[tuple[str, Sequence[Any] | None, str | None]]


def make_inputs(context: RunContext, signature: Signature) -> dict[str, Any]:
    """One array per model input: from the test's input file of that name, else random, shaped
    by the test's ``inputs`` (else by the model, symbolic dims as 1).

    A random input is drawn from a generator seeded by its position among the inputs, not by
    its name, so that a converted model whose converter renamed its inputs (ONNX ``input``,
    LiteRT ``serving_default_input:0``) draws the very numbers its original draws; the spec's
    ``match.inputs`` gives that order where a converter reordered them too. A channels-last
    model's (``"layout": "NHWC"``) random 4-D inputs are drawn channels-first and moved
    channels-last, the numbers an NCHW framework draws. Input files are the model's own, read
    as they are. The record keeps each input's shape, type and source in that order, which is
    what the agreement across frameworks compares."""
    declared = context.case.test.get("inputs") or {}
    _check_input_names(context, declared, [name for name, _, _ in signature])
    arrays, described = {}, {}
    for position, (name, model_shape, model_type) in enumerate(_paired_order(context, signature)):
        array, source = _one_input(context, name, position, model_shape, model_type)
        arrays[name] = array
        described[name] = {"shape": list(array.shape), "type": str(array.dtype), "source": source}
    context.recorder.extra["inputs"] = described
    return arrays


def _one_input(
    context: RunContext, name: str, position: int, model_shape: Any, model_type: str | None
) -> tuple[Any, str]:
    """One input's array and where it came from: the test's constant ``value`` (broadcast to
    its shape), the test's input file, else random numbers. A shape or type the test does not
    give is the model's; an input file the model does not describe keeps its own."""
    import numpy as np

    spec = (context.case.test.get("inputs") or {}).get(name, {})
    dims = spec["shapes"][0] if spec else model_shape
    shape = None if dims is None else concrete_shape(dims)
    kind = spec.get("type") or model_type
    dtype = numpy_dtype(kind) if kind else None
    files = context.files.input_paths(name)
    if "value" in spec:
        constant = np.asarray(spec["value"], dtype=dtype)
        return np.broadcast_to(constant, shape or constant.shape).copy(), "value"
    if files:
        digest = hashlib.md5(files[0].read_bytes(), usedforsecurity=False).hexdigest()
        return _file_input(files[0], name, dtype, shape, bool(spec)), f"file md5 {digest}"
    if shape is None or dtype is None:
        raise RunnerError(
            f"{context.case.where}: the input {name!r} has no shape or type to draw random "
            'numbers for: give it in the test\'s "inputs", e.g. {"x": {"shapes": [[1, 64]], '
            '"type": "float"}}, or give an input file'
        )
    rng = np.random.default_rng([SEED, position])
    return _random_input(shape, dtype, rng, context.case.layout), "random"


def _paired_order(context: RunContext, signature: Signature) -> Signature:
    """The model's inputs in the order they pair with the reference framework's: the spec's
    ``match.inputs`` where it gives one, else the model's own order."""
    order = context.case.match.get("inputs")
    if not order:
        return signature
    by_name = {entry[0]: entry for entry in signature}
    if sorted(order) != sorted(by_name):
        raise RunnerError(
            f"{context.case.where}: match.inputs {order} must name every input of the model "
            f"once, in the reference framework's order; the model's inputs are {list(by_name)}"
        )
    return [by_name[name] for name in order]


def _random_input(shape: list[int], dtype: Any, rng: Any, layout: str | None) -> Any:
    drawn = random_tensor(channels_first_shape(shape, layout), dtype, rng)
    return channels_last(drawn, layout)


def _check_input_names(
    context: RunContext, declared: Mapping[str, Any], model_inputs: list[str]
) -> None:
    """A test's ``inputs`` or ``input_files`` entry that names no input of the model is a typo:
    silently feeding random data instead would benchmark something else."""
    case = context.case
    given = [(f"tests[{case.test_index}].inputs.{name}", name) for name in declared]
    given += [(ref.where, ref.name) for ref in case.input_files]
    for where, name in given:
        if name not in model_inputs:
            raise RunnerError(
                f"{case.spec_path} {where}: the model has no input {name!r}; its "
                f"inputs are {model_inputs}. Name the entry after one of them"
            )


def _file_input(path: Path, name: str, dtype: Any, shape: list[int] | None, declared: bool) -> Any:
    """An input file's array: shaped as the test declares, else as stored (an ``.npy`` knows its
    shape, which may differ from the model's symbolic one), else as the model declares."""
    flat = path.suffix.lower() in (".bin", ".raw")  # raw bytes have no shape of their own
    array = read_tensor(path, name, dtype, shape if declared or flat else None)
    if shape is not None and array.ndim <= 1 and list(array.shape) != shape:  # one per line
        array = read_tensor(path, name, dtype, shape)
    return array


class ColdStart:
    """What a model costs before its warm loop, each its own metric: ``NET load`` (file to a
    ready session or interpreter, us), ``NET first_inference`` (the first call after it, us),
    and the item's ``NET peak_memory`` and ``NET memory_increment`` (the peak less what was
    resident before the load, MiB; runners/memory.py). Used as::

        cold = ColdStart(context)
        session = cold.load(lambda: framework.load(path))   # one or more steps
        cold.loaded()
        cold.first(lambda: session.run(...))
        time_runs(context, ...)   # the warm loop
        cold.memory()             # before profiling, which loads the model again

    Only the framework's own steps are timed: what the runner does between them (making the
    inputs, looking up the framework's version, writing the record) is not the model's load,
    and in a fresh process such a lookup alone took 20-35 ms.
    """

    clock = staticmethod(time.perf_counter_ns)  # a class attribute so that tests can drive it

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self.watch = PeakWatch.start()
        self.load_ns = 0

    def load(self, step: Callable[[], T]) -> T:
        """Run one step of the load and add its time to ``NET load``."""
        start = self.clock()
        result = step()
        self.load_ns += self.clock() - start
        return result

    def loaded(self) -> None:
        self.context.recorder.record("NET", "load", "us", self.load_ns / 1000.0)

    def first(self, run: Callable[[], Any]) -> Any:
        self.context.time_left()
        start = self.clock()
        result = run()
        self.context.recorder.record(
            "NET", "first_inference", "us", (self.clock() - start) / 1000.0
        )
        return result

    def memory(self) -> None:
        measured = self.watch.read() if self.watch else None
        if measured is None:
            self.context.recorder.extra["memory"] = (
                "not measured: the kernel's peak cannot be reset"
            )
            return
        peak, increment = measured
        self.context.recorder.record("NET", "peak_memory", "MiB", peak)
        self.context.recorder.record("NET", "memory_increment", "MiB", increment)


def checked(context: RunContext, first: T, last: T) -> T:
    """The outputs that golden files and the agreement compare: the last timed call's, or for
    a stateful model (the spec's ``stateful``) the first call's after loading, on fresh state:
    warmup, timed and profiled calls move the state on."""
    return first if context.case.stateful else last


def time_runs(context: RunContext, run: Callable[[], Any]) -> Any:
    """``warmup`` untimed calls, then one ``"NET latency"`` sample (us) per timed call; returns
    the last call's result (the outputs checked against golden files)."""
    result = None
    for _ in range(context.warmup):
        context.time_left()
        result = run()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(context.iterations):
        context.time_left()  # the case's timeout holds in-process too (between runs)
        start = clock()
        result = run()
        samples.append((clock() - start) / 1000.0)
    context.recorder.record("NET", "latency", "us", samples)
    if context.keep_call is not None:
        context.keep_call(run)
    return result


def timed_calls(run: Callable[[], Any], iterations: int, warmup: int) -> list[float]:
    """``warmup`` untimed calls, then one sample (us) per timed call."""
    for _ in range(warmup):
        run()
    samples, clock = [], time.perf_counter_ns
    for _ in range(iterations):
        start = clock()
        run()
        samples.append((clock() - start) / 1000.0)
    return samples


# Profiled runs left out before the operators are recorded: a fresh session's cold first run
# (ONNX Runtime: one shufflenet node took 8,253 us cold against 136 us warm), the profiler's own
# first step (PyTorch).
PROFILE_WARMUP = 1


def profiled_runs(context: RunContext) -> int:
    """How many runs per-operator profiling takes: enough for a median, few enough to be quick
    (profiling slows every run, so it never shares runs with the timed loop)."""
    return max(1, min(context.iterations, 20))


def missing(module: str, extra: str) -> str | None:
    """Why an in-process runner cannot run: its framework is not importable."""
    try:
        quiet_import(module)
    except ImportError:
        return f"{module.split('.')[0]} is not installed: pip install 'pytest-aibench[{extra}]'"
    return None


@contextlib.contextmanager
def framework_warnings_ignored() -> Iterator[None]:
    """Around a framework's own imports and set-up: the warnings they raise (ExecuTorch 1.5
    calls a deprecated importlib API while importing and while reading a profile) are the
    framework's to fix, and a project that turns warnings into errors would fail every item."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def quiet_import(module: str) -> Any:
    """Import a framework's module, its own warnings ignored."""
    with framework_warnings_ignored():
        return importlib.import_module(module)


def model_path(context: RunContext, *names: str) -> Path:
    """The model file: the first of ``names`` in ``model.files``, else the only file there."""
    files = context.files.model_files()
    for name in names:
        if name in files:
            return files[name]
    if len(files) == 1:
        return next(iter(files.values()))
    raise RunnerError(
        f"{context.case.spec_path} model.files: expected the model under "
        f"{' or '.join(repr(n) for n in names)} (or a single file), found "
        f"{sorted(files) or 'no files'}"
    )
