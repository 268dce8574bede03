"""ExecuTorch, PyTorch's on-device runtime: a ``.pte`` program (``files.model``; a ``.ptd``
file of its weights as ``files.weights``, where the export kept them apart) run in process on
the host by ``executorch.runtime``, or on any device by ExecuTorch's own ``executor_runner``.

The program declares its inputs (shapes and types, in its method's metadata); the test's
``inputs`` and input files override them by position, as for the other runtimes. One
``execute`` per sample. The delegates a program uses are fixed when it is lowered, so
``--aibench-backend`` chooses programs, not kernels: ``cpu`` runs any program as it is, a
delegate's name (``xnnpack``, ``qnn``, ...) only programs lowered to it. Operators come from
the runtime's own profile (ETDump, read by ExecuTorch's Inspector) over separate runs of a
second load of the program, so that profiling never slows the timed runs. The test's
``executorch`` object may set ``num_threads`` (the threadpool of XNNPACK and the optimized
kernels).

A generation test (``"metric": "generation"``) runs the program with ExecuTorch's LLM runner
(runners/executorch_llm.py).

A test with ``commands``, or a ``--aibench-program`` (the runner binary built for the device),
runs the binary instead: one command is composed when the test gives none, with
``--num_executions`` of warmup + iter (``{executions}``; the runner has no warm-up flag, and the
first ``warmup`` executions are left out of the samples). Its log gives a sample per execution
and the load time (parsers/executor_runner.py); an ETDump it writes (``--etdump_path``), pulled
back as an output file, gives the operators; its raw output files (``--output_file``) are
checked against the golden files.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..backends import EXECUTORCH_DELEGATES
from ..devices.base import CommandResult
from ..errors import RunnerError, Unsupported
from ..generation import GENERATION
from ..parsers.etdump import ProfileEvent, operators_from_events
from ..parsers.executor_runner import parse_executor_runner
from ..spec.model import Case
from ..spec.placeholders import Lookup, chained_lookup
from .base import RunContext
from .executorch_llm import run_generation
from .generic import GenericRunner
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


ETDUMP_SUFFIXES = (".etdump", ".etdp")


def runner_command(case: Case, program: str | None) -> list[str]:
    """The runner binary's command for a test that gives none, when a program is given."""
    if not program:
        return []
    command = "{program} --model_path={files.model} --num_executions={executions}"
    if "weights" in case.model.get("files", {}):
        command += " --data_path={files.weights}"
    threads = (case.test.get("executorch") or {}).get("num_threads")
    return [command + (f" --cpu_threads={int(threads)}" if threads else "")]


class ExecutorchRunner(GenericRunner):
    name = "executorch"

    def commands(self, case: Case, program: str | None) -> list[str]:
        return case.commands or runner_command(case, program)

    def unavailable(self, case: Case, program: str | None) -> str | None:
        if self.commands(case, program):
            return super().unavailable(case, program)
        return missing("executorch.runtime", "executorch")

    def run(self, context: RunContext) -> None:
        if self.commands(context.case, context.program):
            super().run(context)
            return
        if context.case.metric == GENERATION:
            run_generation(context)
            return
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

    def _told_backend(self, context: RunContext, commands: list[str]) -> list[str]:
        """The runner binary takes no backend: the program's delegates, read from it here,
        decide whether it runs as ``--aibench-backend`` asks, and are recorded."""
        delegates = _readable_delegates(context)
        if delegates is None and context.backend != "cpu":
            raise Unsupported(
                f"--aibench-backend {context.backend}: which delegates the program uses is read "
                "from it on the host, which needs executorch: pip install "
                "'pytest-aibench[executorch]'"
            )
        _check_lowered(context, delegates or [])
        context.recorder.extra["backend"] = {
            "name": context.backend,
            "delegates": _delegates_text(delegates),
        }
        context.recorder.extra["executorch"] = {"delegates": delegates, "runner": "program"}
        return commands

    def _lookup(self, context: RunContext, placed: dict[str, Any], index: int) -> Lookup:
        executions = {"executions": context.warmup + context.iterations}
        return chained_lookup(executions, super()._lookup(context, placed, index))

    def _record(self, context: RunContext, outputs: list[CommandResult]) -> None:
        lines = [line for result in outputs for line in result.output_lines]
        try:
            parsed = parse_executor_runner(lines, context.warmup)
        except ValueError as exc:
            raise RunnerError(f"{context.case.where}: {exc}") from None
        if parsed is None or "NET latency" not in parsed.records:
            raise RunnerError(
                f"{context.case.where}: no executor_runner timings ('Model executed "
                f"successfully N time(s) in X ms.') in the output, which ended with:\n"
                f"{outputs[-1].tail()}"
            )
        for record in parsed.records.values():
            context.recorder.add(record)
        context.recorder.extra["executorch"] |= {
            "executions": parsed.executions,
            "warmup_left_out": parsed.warmup_left_out,
            "num_threads": parsed.threads,
        }

    def _record_files(self, context: RunContext, pulled: Mapping[str, Path]) -> None:
        """An ETDump the runner wrote (``--etdump_path``) gives the operators, less the
        warm-up executions."""
        super()._record_files(context, pulled)
        for path in pulled.values():
            if path.suffix.lower() in ETDUMP_SUFFIXES:
                delegates = context.recorder.extra["executorch"]["delegates"] or []
                _record_operators(context, path, context.warmup, delegates)

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
        _check_lowered(context, delegates, f"; the runtime here has {', '.join(registered)}")

    def _describe(self, context: RunContext, runtime: Any, delegates: list[str]) -> None:
        version = quiet_import("executorch.version").__version__
        context.recorder.extra["backend"] = {
            "name": context.backend,
            "delegates": _delegates_text(delegates),
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
        runs = profiled_runs(context)
        program = self._load(context, runtime, path, etdump=True)
        method = _forward(context, program)
        for _ in range(PROFILE_WARMUP + runs):
            method.execute(tensors)
        with tempfile.TemporaryDirectory(prefix="aibench-etdump-") as folder:
            dump = Path(folder) / "profile.etdp"
            program.write_etdump_result_to_file(str(dump), str(Path(folder) / "debug.bin"))
            _record_operators(context, dump, PROFILE_WARMUP, delegates)


def _record_operators(context: RunContext, dump: Path, warmup: int, delegates: list[str]) -> None:
    """The operators of an ETDump (ExecuTorch's Inspector reads it; the runtime's ticks are
    nanoseconds), less the first ``warmup`` executions."""
    inspector_module = quiet_import("executorch.devtools.inspector")
    with framework_warnings_ignored():
        inspector = inspector_module.Inspector(
            etdump_path=str(dump),
            source_time_scale=inspector_module.TimeScale.NS,
            target_time_scale=inspector_module.TimeScale.US,
        )
    profile = operators_from_events(_execution_events(inspector, warmup), delegates)
    for operator in profile.operators:
        context.recorder.add_operator(operator)
    if profile.execute_mean:
        context.recorder.operator_bases.append(profile.execute_mean)


def _check_lowered(context: RunContext, delegates: list[str], more: str = "") -> None:
    """Skip, for ``--aibench-backend NAME``, a program not lowered to NAME's delegate."""
    backend = context.backend
    if backend == "cpu":
        return
    wanted = EXECUTORCH_DELEGATES.get(backend)
    if wanted is None or wanted not in delegates:
        lowered = ", ".join(dict.fromkeys(delegates)) or "no delegate (portable kernels)"
        raise Unsupported(
            f"--aibench-backend {backend}: ExecuTorch fixes delegates when a program is "
            f"lowered, and this one has {lowered}{more}"
        )


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


def _readable_delegates(context: RunContext) -> list[str] | None:
    """The program's delegates, or None where this host has no ExecuTorch to read them."""
    try:
        return program_delegates(model_path(context, "model", "program"))
    except ImportError:
        return None


def _delegates_text(delegates: list[str] | None) -> list[str]:
    if delegates is None:
        return ["unknown (install executorch on the host to read them)"]
    return delegates or ["none (portable kernels)"]


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
