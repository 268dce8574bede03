"""PyTorch in process on the host: TorchScript (``torch.jit.load``) or ``torch.export``
archives (``.pt2``, ``torch.export.load``).

Inputs come from the test's ``inputs`` (a TorchScript file does not declare its input shapes)
or its input files, in the order the test lists them. Timed runs first, then a separate
``torch.profiler`` pass for per-operator times (self CPU time per run). The test's ``pytorch``
object may set ``num_threads``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

from ..errors import RunnerError, Unsupported
from ..metrics import OperatorRecord
from ..spec.model import Case
from .base import RunContext
from .inprocess import (
    PROFILE_WARMUP,
    ColdStart,
    Signature,
    checked,
    make_inputs,
    missing,
    model_path,
    profiled_runs,
    time_runs,
)
from .observer_program import ObserverProgramRunner
from .outputs import check_outputs


def named_outputs(result: Any, copy: bool = False) -> dict[str, Any]:
    """A module's result as numpy arrays by name: one tensor is ``output``, a tuple ``0``,
    ``1``..., a dict keeps its keys; with ``copy``, arrays of their own (a module may return
    a buffer it later writes again)."""
    if isinstance(result, Mapping):
        items = list(result.items())
    elif isinstance(result, tuple | list):
        items = [(str(index), value) for index, value in enumerate(result)]
    else:
        items = [("output", result)]
    return {
        str(name): value.detach().cpu().numpy().copy() if copy else value.detach().cpu().numpy()
        for name, value in items
    }


def _signature(context: RunContext) -> Signature:
    """The module's arguments in order: the test's ``inputs`` (shape and type, float by
    default), then its ``input_files`` that ``inputs`` leaves out (shape and type as the file
    keeps them). A TorchScript or exported model declares neither."""
    declared = context.case.test.get("inputs") or {}
    signature: list[tuple[str, Any, str | None]] = [
        (name, spec["shapes"][0], spec.get("type", "float")) for name, spec in declared.items()
    ]
    signature += [
        (ref.name, None, None) for ref in context.case.input_files if ref.name not in declared
    ]
    if not signature:
        raise RunnerError(
            f"{context.case.where}: a TorchScript or exported model does not declare its "
            'inputs; give the test \'inputs\', e.g. {"x": {"shapes": [[1, 64]], "type": '
            "\"float\"}}, or 'input_files'"
        )
    return signature


def in_module_order(signature: Signature, module: Any) -> Signature:
    """The declared arguments in the order the module's ``forward`` takes them, where the test
    names them as the module does (the spec's ``inputs`` and ``input_files`` are two maps, and
    a JSON map's order is no argument order); else in the declared order, positionally (a
    traced module may call its argument ``input`` where the spec says ``x``)."""
    order = _argument_names(module)
    if order is None or any(name not in order for name, _, _ in signature):
        return signature
    return sorted(signature, key=lambda argument: order.index(argument[0]))


def _argument_names(module: Any) -> list[str] | None:
    """``forward``'s argument names: a TorchScript module's schema, else its Python signature."""
    schema = getattr(getattr(module, "forward", None), "schema", None)
    if schema is not None:
        return [argument.name for argument in schema.arguments[1:]]  # [0] is self
    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        return None  # an exported module's flat *args: the declared order is all there is
    return [p.name for p in parameters]


class PytorchRunner:
    """TorchScript or torch.export in process; a test with commands (or legacy ``inputs`` and a
    ``--aibench-program``) runs ``speed_benchmark_torch`` through the observer-program runner."""

    name = "pytorch"

    def __init__(self) -> None:
        self.program_runner = ObserverProgramRunner("pytorch")

    def _program_mode(self, case: Case, program: str | None) -> bool:
        return bool(case.commands or (program and self.program_runner.commands(case, program)))

    def commands(self, case: Case, program: str | None) -> list[str]:
        """The speed_benchmark_torch commands in program mode; none in process."""
        if self._program_mode(case, program):
            return self.program_runner.commands(case, program)
        return []

    def unavailable(self, case: Case, program: str | None) -> str | None:
        if self._program_mode(case, program):
            return self.program_runner.unavailable(case, program)
        return missing("torch", "torch")

    def run(self, context: RunContext) -> None:
        if self._program_mode(context.case, context.program):
            self.program_runner.run(context)
        else:
            self._run_in_process(context)

    def _run_in_process(self, context: RunContext) -> None:
        import torch

        if not context.device.local:
            raise Unsupported("PyTorch in process runs on the host only")
        signature = _signature(context)
        device = self._torch_device(context)
        cold = ColdStart(context)
        module = cold.load(lambda: self._load(context, device))
        cold.loaded()
        arrays = make_inputs(context, in_module_order(signature, module))
        tensors = [torch.from_numpy(array).to(device) for array in arrays.values()]

        def forward() -> Any:
            with torch.inference_mode():
                result = module(*tensors)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return result

        first = named_outputs(cold.first(forward), copy=True)  # later calls may reuse them
        result = time_runs(context, forward)
        cold.memory()
        self._profile_operators(context, forward)
        check_outputs(context, checked(context, first, named_outputs(result)))

    def _torch_device(self, context: RunContext) -> Any:
        import torch

        backend = context.backend
        onednn: Any = torch.backends.mkldnn  # untyped, and its flag a typed context property
        available = ["cpu", *(["onednn"] if onednn.is_available() else [])]
        available += ["cuda"] if torch.cuda.is_available() else []
        if backend not in available:
            raise Unsupported(
                f"--aibench-backend {backend}: this torch {torch.__version__} offers "
                f"{', '.join(available)}"
            )
        options = context.case.test.get("pytorch") or {}
        threads = options.get("num_threads") or context.threads  # A/B: the CPUs it is pinned to
        if threads:
            torch.set_num_threads(int(threads))
        # oneDNN (MKL-DNN) kernels: on for the onednn backend, else as the spec says (on)
        onednn.enabled = backend == "onednn" or bool(options.get("onednn", True))
        context.recorder.extra["backend"] = {"name": backend, "onednn": bool(onednn.enabled)}
        context.recorder.extra["torch"] = {
            "version": str(torch.__version__),
            "num_threads": torch.get_num_threads(),
            "backend": backend,
        }
        return torch.device("cuda" if backend == "cuda" else "cpu")

    def _load(self, context: RunContext, device: Any) -> Any:
        import torch

        path = model_path(context, "model")
        api: Any = torch  # torch.jit.load and torch.export.load carry no type hints
        try:
            if path.suffix == ".pt2":
                module = api.export.load(str(path)).module()
            else:
                with warnings.catch_warnings():
                    # torch 2.13 deprecates TorchScript in favour of torch.export; a spec that
                    # names a TorchScript file asked for it, so -W error runs should not fail.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    module = api.jit.load(str(path), map_location=device).eval()
        except Exception as exc:  # torch raises many unrelated types for a bad archive
            raise RunnerError(f"{context.case.where}: torch cannot load {path}: {exc}") from None
        context.recorder.extra["torch"]["format"] = (
            "export" if path.suffix == ".pt2" else "torchscript"
        )
        return module.to(device)

    def _profile_operators(self, context: RunContext, forward: Any) -> None:
        from torch.profiler import ProfilerActivity, profile, schedule

        runs = profiled_runs(context)
        steps = schedule(wait=0, warmup=PROFILE_WARMUP, active=runs)
        # acc_events: the events stay readable after the schedule's one cycle ends
        with profile(
            activities=[ProfilerActivity.CPU], schedule=steps, acc_events=True
        ) as profiler:
            for _ in range(PROFILE_WARMUP + runs):
                forward()
                profiler.step()
        total = 0.0
        for average in profiler.key_averages():
            self_time = float(average.self_cpu_time_total) / runs
            # ProfilerStep#N spans a whole step; its self time is the Python between operators
            if self_time <= 0 or average.key.startswith("ProfilerStep"):
                continue
            total += self_time
            context.recorder.add_operator(
                OperatorRecord(
                    name=average.key,
                    type=average.key,
                    mean=self_time,
                    calls=max(1, round(average.count / runs)),
                )
            )
        if total:
            context.recorder.operator_bases.append(total)
