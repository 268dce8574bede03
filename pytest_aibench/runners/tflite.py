"""TFLite: TFLite's ``benchmark_model`` program on any device, or LiteRT in process on the host.

A test with ``commands`` (or, FAI-PEP's legacy form, ``inputs`` and a ``--aibench-program``)
runs the program and parses its text output: whole-net summary statistics (the tool prints no
per-run samples) and, with ``--enable_op_profiling=true``, per-operator averages. A test without
them runs the model in this process with ai-edge-litert: one ``invoke`` per sample, the test's
``tflite`` object choosing ``num_threads`` and ``xnnpack`` (on by default). LiteRT's Python API
has no per-operator profiler, so in-process items have no operator records.
"""

from __future__ import annotations

import math
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..backends import DEFAULT, LITERT_DELEGATE_FLAGS
from ..devices.base import CommandResult
from ..errors import RunnerError, Unsupported
from ..parsers.tflite import parse_benchmark_model
from ..spec.model import Case
from .base import RunContext
from .generic import GenericRunner
from .inprocess import ColdStart, checked, make_inputs, missing, model_path, time_runs
from .outputs import check_outputs


def legacy_command(case: Case, program: str | None) -> list[str]:
    """FAI-PEP's TFLite composer for a test with ``inputs`` and no commands, when a program is
    given: the last input's first shape only, as FAI-PEP does."""
    inputs = case.test.get("inputs") or {}
    if not inputs or not program:
        return []
    name, spec = list(inputs.items())[-1]
    dims = ",".join(str(dim) for dim in spec["shapes"][0])
    return [
        "{program} --graph={files.graph} --warmup_runs={warmup} --num_runs={iter} "
        f"--input_layer={name} --input_layer_shape={dims}"
    ]


class TfliteRunner(GenericRunner):
    name = "tflite"

    def commands(self, case: Case, program: str | None) -> list[str]:
        return case.commands or legacy_command(case, program)

    def unavailable(self, case: Case, program: str | None) -> str | None:
        if self.commands(case, program):
            return super().unavailable(case, program)
        return missing("ai_edge_litert.interpreter", "tflite")

    def run(self, context: RunContext) -> None:
        if self.commands(context.case, context.program):
            super().run(context)
        else:
            self._run_in_process(context)

    def backend_arguments(self, backend: str) -> list[str]:
        """benchmark_model's flag for the delegate ``--aibench-backend`` names."""
        if backend == DEFAULT:
            return []
        if backend not in LITERT_DELEGATE_FLAGS:
            raise Unsupported(
                f"--aibench-backend {backend} is no benchmark_model delegate "
                f"(it has {', '.join(LITERT_DELEGATE_FLAGS)})"
            )
        return [LITERT_DELEGATE_FLAGS[backend]]

    def backend_commands(self, commands: list[str]) -> list[int]:
        return [len(commands) - 1]  # the main command is benchmark_model, whatever it is called

    def _record(self, context: RunContext, outputs: list[CommandResult]) -> None:
        lines = [line for result in outputs for line in result.output_lines]
        parsed = parse_benchmark_model(lines)
        if "NET latency" not in parsed.records:
            raise RunnerError(
                f"{context.case.where}: no benchmark_model timings (count=... or 'Inference "
                f"timings in us') in the output, which ended with:\n{outputs[-1].tail()}"
            )
        for record in parsed.records.values():
            context.recorder.add(record)
        for operator in parsed.operators:
            context.recorder.add_operator(operator)
        if parsed.operators:  # the tool's own % column is of the operators' total
            context.recorder.operator_bases.append(
                math.fsum(op.mean or 0.0 for op in parsed.operators)
            )
        if parsed.operator_types:
            context.recorder.extra["operator_types"] = parsed.operator_types

    def _run_in_process(self, context: RunContext) -> None:
        if context.backend not in IN_PROCESS_BACKENDS:  # the Python interpreter has no GPU,
            raise Unsupported(  # NNAPI or Hexagon delegate here: benchmark_model has them
                f"LiteRT in process runs on {' or '.join(IN_PROCESS_BACKENDS)} (XNNPACK) only; "
                f"--aibench-backend {context.backend} skips it (give the test commands that "
                "run benchmark_model: it is given the delegate's flag)"
            )
        cold = ColdStart(context)
        interpreter = cold.load(lambda: self._interpreter(context))
        details = interpreter.get_input_details()
        arrays = make_inputs(
            context,
            [
                (d["name"], list(d["shape_signature"]) or list(d["shape"]), d["dtype"].__name__)
                for d in details
            ],
        )
        cold.load(lambda: self._allocate(context, interpreter, details, arrays))
        cold.loaded()  # read, resolved, and its tensors allocated for these inputs
        self._describe(context)
        for detail in details:
            interpreter.set_tensor(detail["index"], arrays[detail["name"]])
        cold.first(interpreter.invoke)
        first = _outputs(interpreter)  # copies: later calls overwrite the tensors
        time_runs(context, interpreter.invoke)
        cold.memory()
        check_outputs(context, checked(context, first, _outputs(interpreter)))

    def _interpreter(self, context: RunContext) -> Any:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        if not context.device.local:
            raise Unsupported(
                "LiteRT in process runs on the host only; give the test commands "
                "that run benchmark_model on the device"
            )
        model = model_path(context, "graph")
        try:
            return Interpreter(
                model_path=str(model),
                num_threads=self._threads(context),
                experimental_op_resolver_type=OpResolverType.AUTO
                if self._xnnpack(context)
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
        except (ValueError, RuntimeError) as exc:
            raise RunnerError(f"{context.case.where}: LiteRT cannot load {model}: {exc}") from None

    def _options(self, context: RunContext) -> dict[str, Any]:
        return dict(context.case.test.get("tflite") or {})

    def _threads(self, context: RunContext) -> int | None:
        """The spec's ``num_threads``, else in A/B the CPUs it is pinned to, else LiteRT's own
        default (``None``)."""
        return self._options(context).get("num_threads") or context.threads

    def _xnnpack(self, context: RunContext) -> bool:
        """--aibench-backend xnnpack insists on the delegate; cpu leaves it to the spec (on)."""
        return context.backend == "xnnpack" or bool(self._options(context).get("xnnpack", True))

    def _describe(self, context: RunContext) -> None:
        """What the item ran on, in its record (after the load: the version lookup is slow)."""
        xnnpack = self._xnnpack(context)
        context.recorder.extra["backend"] = {
            "name": context.backend,
            "delegate": "XNNPACK" if xnnpack else "none (built-in kernels)",
        }
        context.recorder.extra["litert"] = {
            "version": _version("ai-edge-litert"),
            "xnnpack": xnnpack,
            "num_threads": self._threads(context),
        }

    def _allocate(
        self, context: RunContext, interpreter: Any, details: list[Any], arrays: dict[str, Any]
    ) -> None:
        """Tensors sized for these inputs and allocated."""
        for detail in details:
            interpreter.resize_tensor_input(detail["index"], list(arrays[detail["name"]].shape))
        try:
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:  # unknown operators surface here
            raise RunnerError(
                f"{context.case.where}: LiteRT cannot prepare {model_path(context, 'graph')}: {exc}"
            ) from None


IN_PROCESS_BACKENDS = ("cpu", "xnnpack")


def _version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _outputs(interpreter: Any) -> dict[str, Any]:
    return {
        detail["name"]: interpreter.get_tensor(detail["index"])
        for detail in interpreter.get_output_details()
    }
