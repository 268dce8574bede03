"""ExecuTorch, PyTorch's on-device runtime, in process on the host: a ``.pte`` program
(``files.model``; a ``.ptd`` file of its weights as ``files.weights``, where the export kept
them apart) run by ``executorch.runtime``.

The program declares its inputs (shapes and types, in its method's metadata); the test's
``inputs`` and input files override them by position, as for the other runtimes. One
``execute`` per sample. The delegates a program uses are fixed when it is lowered, so
``--aibench-backend`` chooses programs, not kernels: ``cpu`` runs any program as it is, a
delegate's name (``xnnpack``, ``qnn``, ...) only programs lowered to it. Operators come from
the runtime's own profile (ETDump, read by ExecuTorch's Inspector) over separate runs of a
second load of the program, so that profiling never slows the timed runs. The test's
``executorch`` object may set ``num_threads`` (the threadpool of XNNPACK and the optimized
kernels).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..backends import EXECUTORCH_DELEGATES
from ..errors import RunnerError, Unsupported
from ..parsers.etdump import ProfileEvent, operators_from_events
from ..spec.model import Case
from .base import RunContext
from .inprocess import (
    PROFILE_WARMUP,
    ColdStart,
    checked,
    framework_warnings_ignored,
    make_inputs,
    missing,
    model_path,
    profiled_runs,
    quiet_import,
    time_runs,
)
from .outputs import check_outputs
from .pytorch import named_outputs

METHOD = "forward"

# The runtime's ScalarType codes (c10's numbering) -> the spec's type names
_SCALAR_TYPES = {
    0: "uint8",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "int64",
    5: "float16",
    6: "float32",
    7: "float64",
    11: "bool",
}


class ExecutorchRunner:
    name = "executorch"

    def commands(self, case: Case, program: str | None) -> list[str]:
        return []

    def unavailable(self, case: Case, program: str | None) -> str | None:
        return missing("executorch.runtime", "executorch")

    def run(self, context: RunContext) -> None:
        if not context.device.local:
            raise Unsupported("ExecuTorch in process runs on the host only")
        runtime = quiet_import("executorch.runtime").Runtime.get()
        with self._threads(context):
            self._run(context, runtime)

    def _run(self, context: RunContext, runtime: Any) -> None:
        path = model_path(context, "model", "program")
        delegates = program_delegates(path)
        self._check_backend(context, runtime, delegates)
        cold = ColdStart(context)
        method = cold.load(lambda: _forward(context, self._load(context, runtime, path)))
        cold.loaded()
        self._describe(context, runtime, delegates)
        arrays = make_inputs(context, _signature(context, method.metadata))
        tensors = _tensors(arrays.values())

        def execute() -> Any:
            return method.execute(tensors)

        first = named_outputs(cold.first(lambda: self._execute(context, execute)), copy=True)
        result = time_runs(context, execute)
        cold.memory()
        self._profile_operators(context, runtime, path, tensors, delegates)
        check_outputs(context, checked(context, first, named_outputs(result)))

    @contextlib.contextmanager
    def _threads(self, context: RunContext) -> Iterator[None]:
        """The test's ``executorch.num_threads``, else in A/B the CPUs both sides share: the
        size of the threadpool that delegates (XNNPACK) and optimized kernels run on (one
        thread per core unless set, through ExecuTorch's own call for it, which it marks
        experimental). The pool is the process's: it is set back for the next item."""
        threads = (context.case.test.get("executorch") or {}).get("num_threads") or context.threads
        bindings = quiet_import("executorch.extension.pybindings.portable_lib")
        before = int(bindings._threadpool_get_thread_count())
        if threads:
            bindings._unsafe_reset_threadpool(int(threads))
        context.recorder.extra["executorch"] = {
            "num_threads": int(bindings._threadpool_get_thread_count())
        }
        try:
            yield
        finally:
            if threads and int(threads) != before:
                bindings._unsafe_reset_threadpool(before)

    def _load(self, context: RunContext, runtime: Any, path: Path, etdump: bool = False) -> Any:
        weights = context.files.model_files().get("weights")
        try:
            return runtime.load_program(path, enable_etdump=etdump, data_path=weights)
        except (RuntimeError, ValueError) as exc:
            raise RunnerError(
                f"{context.case.where}: ExecuTorch cannot load {path}: {exc}"
            ) from None

    def _execute(self, context: RunContext, execute: Any) -> Any:
        """The first call, where a program that does not take these inputs says so."""
        try:
            return execute()
        except (RuntimeError, ValueError) as exc:
            raise RunnerError(
                f"{context.case.where}: ExecuTorch cannot run {METHOD} on the inputs "
                f"{context.recorder.extra.get('inputs')}: {exc} (a program takes the shapes it "
                "was exported with, unless exported with dynamic shapes)"
            ) from None

    def _check_backend(self, context: RunContext, runtime: Any, delegates: list[str]) -> None:
        """Skip a program this runtime cannot run as asked: one lowered to a delegate this
        build lacks, or, for ``--aibench-backend NAME``, one not lowered to NAME."""
        registered = list(runtime.backend_registry.registered_backend_names)
        absent = sorted(set(delegates) - set(registered))
        if absent:
            raise Unsupported(
                f"this program delegates to {', '.join(absent)}, which this ExecuTorch build "
                f"lacks (it has {', '.join(registered) or 'no delegate'})"
            )
        backend = context.backend
        if backend == "cpu":
            return
        wanted = EXECUTORCH_DELEGATES.get(backend)
        if wanted is None or wanted not in delegates:
            lowered = ", ".join(dict.fromkeys(delegates)) or "no delegate (portable kernels)"
            raise Unsupported(
                f"--aibench-backend {backend}: ExecuTorch fixes delegates when a program is "
                f"lowered, and this one has {lowered}; the runtime here has "
                f"{', '.join(registered)}"
            )

    def _describe(self, context: RunContext, runtime: Any, delegates: list[str]) -> None:
        version = quiet_import("executorch.version").__version__
        context.recorder.extra["backend"] = {
            "name": context.backend,
            "delegates": delegates or ["none (portable kernels)"],
        }
        context.recorder.extra["executorch"] |= {
            "version": str(version),
            "delegates": delegates,
            "registered_backends": list(runtime.backend_registry.registered_backend_names),
        }

    def _profile_operators(
        self,
        context: RunContext,
        runtime: Any,
        path: Path,
        tensors: list[Any],
        delegates: list[str],
    ) -> None:
        """Per-operator times from ETDump, over runs of a second load of the program."""
        inspector_module = quiet_import("executorch.devtools.inspector")
        runs = profiled_runs(context)
        program = self._load(context, runtime, path, etdump=True)
        method = _forward(context, program)
        for _ in range(PROFILE_WARMUP + runs):
            method.execute(tensors)
        with tempfile.TemporaryDirectory(prefix="aibench-etdump-") as folder:
            dump = Path(folder) / "profile.etdp"
            program.write_etdump_result_to_file(str(dump), str(Path(folder) / "debug.bin"))
            with framework_warnings_ignored():
                inspector = inspector_module.Inspector(
                    etdump_path=str(dump),
                    source_time_scale=inspector_module.TimeScale.NS,
                    target_time_scale=inspector_module.TimeScale.US,
                )
        profile = operators_from_events(_execution_events(inspector, PROFILE_WARMUP), delegates)
        for operator in profile.operators:
            context.recorder.add_operator(operator)
        if profile.execute_mean:
            context.recorder.operator_bases.append(profile.execute_mean)


def _forward(context: RunContext, program: Any) -> Any:
    """The program's ``forward`` method, loaded (the method a lowered module runs)."""
    if METHOD not in program.method_names:
        raise RunnerError(
            f"{context.case.where}: the program has no {METHOD!r} method, only "
            f"{sorted(program.method_names)}"
        )
    return program.load_method(METHOD)


def _execution_events(inspector: Any, warmup: int) -> list[ProfileEvent]:
    """The events of the executions (not of the load), less the first ``warmup`` runs."""
    events = []
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        for event in block.events:
            raw = list(event.perf_data.raw) if event.perf_data is not None else []
            events.append(ProfileEvent(event.name, raw[warmup:], bool(event.is_delegated_op)))
    return events


def program_delegates(path: Path) -> list[str]:
    """The backends the program's method delegates to, in the order of its delegates: read
    from the program itself (ExecuTorch's own reader of the flatbuffer)."""
    reader = quiet_import("executorch.exir._serialize._program")
    try:
        program = reader.deserialize_pte_binary(path.read_bytes())
    except Exception as exc:  # the reader raises what its flatbuffer library raises
        raise RunnerError(f"{path} is no ExecuTorch program: {exc}") from None
    plans = getattr(program, "program", program).execution_plan
    return [delegate.id for plan in plans if plan.name == METHOD for delegate in plan.delegates]


def _signature(context: RunContext, meta: Any) -> list[tuple[str, Any, str | None]]:
    """The method's inputs in order, named as the test names them by position (its ``inputs``,
    then the input files they leave out), else ``input0``, ``input1``...: a program keeps no
    input names."""
    declared = list(context.case.test.get("inputs") or {})
    declared += [ref.name for ref in context.case.input_files if ref.name not in declared]
    signature = []
    for index in range(meta.num_inputs()):
        tensor = meta.input_tensor_meta(index)
        name = declared[index] if index < len(declared) else f"input{index}"
        signature.append((name, list(tensor.sizes()), _SCALAR_TYPES.get(int(tensor.dtype()))))
    return signature


def _tensors(arrays: Any) -> list[Any]:
    import torch

    return [torch.from_numpy(array) for array in arrays]
