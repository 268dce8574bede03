"""Benchmark programs that report through observer rows: Caffe2's ``speed_benchmark`` and
PyTorch's ``speed_benchmark_torch --report_pep true``.

On top of the generic runner:

- FAI-PEP's legacy command composer, for a test with ``inputs`` and no ``commands``;
- the main command is run again until ``iter`` whole-net (``NET latency``) rows are collected.
  Only NET rows count; FAI-PEP also counted operator rows, so with ``--run_individual true`` it
  stopped early. A run that adds no NET row ends the loop (the item then fails if none came);
- operator rows (``--run_individual true``) become operator records, as in the generic runner.

Caffe2 itself cannot run on our machines; the tests drive this runner with a program that prints
Caffe2Observer output in the real format.
"""

from __future__ import annotations

from ..devices.base import CommandResult
from ..errors import RunnerError
from ..parsers.observer import parse_observer_lines
from ..spec.model import Case
from ..spec.placeholders import Lookup
from .base import RunContext
from .generic import GenericRunner

MAX_RERUNS = 100  # a program that never reaches `iter` rows must not loop forever


def _flags(case: Case, framework: str) -> str:
    """The dict-form ``commands: {"caffe2": {"flag": "value"}}`` of FAI-PEP's old specs."""
    flags = (case.test.get("framework_flags") or {}).get(framework) or {}
    return "".join(f" --{name} {value}" for name, value in flags.items())


def caffe2_legacy_command(case: Case) -> str:
    inputs = case.test["inputs"]
    names = ",".join(inputs)
    files = {ref.name for ref in case.input_files}
    command = "{program} --net {files.predict} --warmup {warmup} --iter {iter}"
    if any(ref.name == "init" for ref in case.model_files):
        command += " --init_net {files.init}"
    if files:
        command += " --input_file " + ",".join(f"{{input_files.{name}}}" for name in inputs)
    else:
        dims = ";".join(",".join(str(d) for d in spec["shapes"][0]) for spec in inputs.values())
        command += f' --input_dims "{dims}"'
    first_type = next(iter(inputs.values())).get("type", "float")
    return command + f" --input {names} --input_type {first_type}" + _flags(case, "caffe2")


def pytorch_legacy_command(case: Case) -> str:
    inputs = case.test["inputs"]
    dims = ";".join(",".join(str(d) for d in spec["shapes"][0]) for spec in inputs.values())
    types = ";".join(spec.get("type", "float") for spec in inputs.values())
    return (
        "{program} --model {files.model} --warmup {warmup} --iter {iter} "
        f'--input_dims "{dims}" --input_type "{types}" --report_pep true' + _flags(case, "pytorch")
    )


class ObserverProgramRunner(GenericRunner):
    name = "caffe2"

    def __init__(self, framework: str = "caffe2") -> None:
        self.name = framework

    def commands(self, case: Case, program: str | None) -> list[str]:
        if case.commands:
            return case.commands
        if not case.test.get("inputs"):
            return []
        compose = pytorch_legacy_command if self.name == "pytorch" else caffe2_legacy_command
        return [compose(case)]

    def _run_main(self, context: RunContext, template: str, lookup: Lookup) -> list[CommandResult]:
        if context.case.metric == "power":
            return super()._run_main(context, template, lookup)
        results: list[CommandResult] = []
        collected = 0
        while collected < context.iterations and len(results) < MAX_RERUNS:
            result = self._run_command(context, template, lookup)
            results.append(result)
            added = parse_observer_lines(result.output_lines, context.observer_prefixes).samples(
                "NET latency"
            )
            if added == 0:
                break
            collected += added
        return results

    def _record(self, context: RunContext, outputs: list[CommandResult]) -> None:
        super()._record(context, outputs)
        if context.case.metric == "delay" and "NET latency" not in context.recorder.records:
            raise RunnerError(
                f"{context.case.where}: no NET latency rows in {len(outputs)} run(s) of the "
                f"program; its output ended with:\n{outputs[-1].tail()}"
            )
