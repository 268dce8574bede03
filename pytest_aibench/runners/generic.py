"""The generic runner: run a test's commands on the device and read its observer lines.

This is how FAI-PEP runs any program: compose each command from its template, push the model
files, input files and program, run the commands in order (all of them again for each
``model.repeat`` index, with ``{INDEX}``), pull ``output_files`` back, and parse
``<prefix> {json}`` rows from everything the commands printed. Preprocess and postprocess steps
run on the host around them (FAI-PEP's accuracy pipelines), and output files with a golden file
of the same name are checked against it.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..backends import program_arguments
from ..devices.base import CommandResult
from ..devices.rusage import NOT_MEASURED
from ..errors import DeviceError, RunnerError, Unsupported
from ..generation import GENERATION
from ..metrics import MetricRecord, OperatorRecord
from ..parsers.executorch_results import RESULTS_FILE, parse_benchmark_results
from ..parsers.llm import parse_executorch_llm, parse_llama_bench
from ..parsers.observer import parse_observer_lines
from ..spec.model import Case
from ..spec.placeholders import Lookup, chained, chained_lookup, fill
from ..tensors import RAW_SUFFIXES, read_tensor
from .base import RunContext
from .outputs import check_outputs
from .power import run_power_test


def command_env(context: RunContext) -> dict[str, str]:
    """The variables the spec sets (``platform_args.env``, then the test's ``env``); a device
    adds them to its own environment. Their values may hold placeholders."""
    env: dict[str, str] = {}
    for extra in (context.case.platform_args.get("env"), context.case.test.get("env")):
        env.update({str(k): str(v) for k, v in (extra or {}).items()})
    return env


PROGRAMS = {
    "caffe2": "Caffe2's speed_benchmark",
    "tflite": "TFLite's benchmark_model",
    "pytorch": "PyTorch's speed_benchmark_torch",
}
_TO_MICROSECONDS = {"us": 1.0, "ms": 1000.0, "s": 1e6, "ns": 1e-3}


def operator_of(record: MetricRecord) -> OperatorRecord | None:
    """An observer latency row of something other than the whole net (Caffe2's
    ``--run_individual true`` rows, a program's own stages) as an operator record, in us."""
    scale = _TO_MICROSECONDS.get(record.unit)
    if record.metric != "latency" or record.type.startswith("NET") or scale is None:
        return None
    if not record.values:
        return None
    return OperatorRecord(
        name=record.type, type=record.type, values=[value * scale for value in record.values]
    )


def _steps(step: Mapping[str, Any] | None) -> list[str]:
    """A ``preprocess``/``postprocess`` object's commands (``commands`` list or ``command``)."""
    if not step:
        return []
    return list(step.get("commands") or ([step["command"]] if step.get("command") else []))


class GenericRunner:
    name = "generic"

    def unavailable(self, case: Case, program: str | None) -> str | None:
        if program is None and any("{program}" in cmd for cmd in self.commands(case, program)):
            return (
                f"the commands of {case.spec_path.name} tests[{case.test_index}] run "
                f"{{program}} ({PROGRAMS.get(self.name, 'a benchmark program')}); pass "
                "--aibench-program PATH to run them"
            )
        return None

    def commands(self, case: Case, program: str | None) -> list[str]:
        """The command templates to run; runners with a command composer override this."""
        return case.commands

    def run(self, context: RunContext) -> None:
        case = context.case
        commands = self.commands(case, context.program)
        if not commands:
            raise RunnerError(
                f"{case.where}: the test has no commands; give 'commands' (a list of command "
                f"templates) for the {self.name} runner"
            )
        commands = self._told_backend(context, commands)
        placed = self._push(context)
        outputs, benchmarks = [], []
        pulled: dict[str, Path] = {}
        *preparing, main = commands
        repeat = int(case.model.get("repeat", 1))
        for index in range(repeat):
            lookup = self._lookup(context, placed, index)
            on_host = self._host_lookup(context, lookup)
            steps = _steps(case.model.get("preprocess")) if index == 0 else []
            outputs += self._on_host(context, steps + _steps(case.test.get("preprocess")), on_host)
            self._push_generated(context, placed, on_host)
            outputs += [self._run_command(context, template, lookup) for template in preparing]
            ran = self._run_main(context, main, lookup)
            outputs += ran
            benchmarks += ran
            pulled = self._pull_outputs(context, placed)
            steps = _steps(case.model.get("postprocess")) if index == repeat - 1 else []
            outputs += self._on_host(context, _steps(case.test.get("postprocess")) + steps, on_host)
        if case.metric != "power":  # there the power source recorded the case
            self._record_files(context, pulled)
            self._record(context, outputs)
            self._record_peak_memory(context, benchmarks)
        if context.files.goldens:
            check_outputs(context, _read_outputs(context, pulled))

    def backend_arguments(self, backend: str) -> list[str]:
        """What a program is told of ``--aibench-backend``: FAI-PEP's ``--backend NAME``."""
        return program_arguments(backend)

    def backend_commands(self, commands: list[str]) -> list[int]:
        """The commands told the backend: FAI-PEP's, those that run ``{program}``."""
        return [index for index, command in enumerate(commands) if "{program}" in command]

    def _told_backend(self, context: RunContext, commands: list[str]) -> list[str]:
        """The commands with the backend's arguments after those that take them, recorded as
        the item's backend; a backend no command can be told of skips the item."""
        arguments = self.backend_arguments(context.backend)
        context.recorder.extra["backend"] = {"name": context.backend, "arguments": arguments}
        if not arguments:
            return commands
        told = self.backend_commands(commands)
        if not told:
            raise Unsupported(
                f"--aibench-backend {context.backend}: no command of the test runs {{program}}, "
                f"which FAI-PEP tells '{shlex.join(arguments)}'"
            )
        added = shlex.join(arguments)
        return [
            f"{command} {added}" if index in told else command
            for index, command in enumerate(commands)
        ]

    def _record_peak_memory(self, context: RunContext, benchmarks: list[CommandResult]) -> None:
        """The main command's peak resident memory, a sample per run, as the device counted it
        (devices/rusage.py), unless the program reported its own (benchmark_model does)."""
        if "NET peak_memory" in context.recorder.records or not benchmarks:
            return
        peaks = [run.peak_memory_kib / 1024 for run in benchmarks if run.peak_memory_kib]
        if peaks:
            context.recorder.record("NET", "peak_memory", "MiB", peaks)
        else:
            context.recorder.extra["memory"] = NOT_MEASURED

    def _host_lookup(self, context: RunContext, lookup: Lookup) -> Lookup:
        """Placeholders as host steps see them: output files where they are pulled to, input
        files made at run time where the preprocess step makes them."""
        case = context.case
        host_paths = {
            "output_files": {
                ref.name: str(self._pulled_path(context, ref.filename)) for ref in case.output_files
            },
            "input_files": {
                ref.name: fill(ref.location, lookup) for ref in case.input_files if ref.is_generated
            },
        }
        return chained_lookup(host_paths, lookup)

    def _on_host(
        self,
        context: RunContext,
        templates: list[str],
        lookup: Lookup,
    ) -> list[CommandResult]:
        """FAI-PEP's preprocess/postprocess commands: on the host, in ``{HOSTDIR}``; what they
        print is parsed like the benchmark's own output (accuracy scripts report that way)."""
        return [
            self._run_command(context, template, lookup, on_host=True) for template in templates
        ]

    def _push_generated(
        self, context: RunContext, placed: dict[str, Any], host_lookup: Lookup
    ) -> None:
        """Input files a preprocess step made (``{HOSTDIR}/x``) go to the device each index."""
        for ref in context.case.input_files:
            if not ref.is_generated:
                continue
            made = Path(fill(ref.location, host_lookup))
            if not made.is_file():
                raise RunnerError(
                    f"{context.case.where} {ref.where}: expected the preprocess "
                    f"step to write {made}, found nothing there"
                )
            placed["input_files"][ref.name] = context.device.push(
                made, context.workdir, ref.filename
            )

    def _run_main(self, context: RunContext, template: str, lookup: Lookup) -> list[CommandResult]:
        """Run the main (last) command; a runner that must re-run it overrides this. In a
        power test it runs once, in the background, while the power source samples; its own
        output is not parsed (FAI-PEP ignores it too)."""
        if context.case.metric == "power":
            self._run_command(context, template, lookup, power=True)
            return []
        return [self._run_command(context, template, lookup)]

    def _push(self, context: RunContext) -> dict[str, Any]:
        """Device paths of everything pushed, shaped like the placeholders that name them."""
        device, workdir = context.device, context.workdir
        placed: dict[str, Any] = {"files": {}, "input_files": {}, "output_files": {}}
        for ref, path in context.files.model:
            placed["files"][ref.name] = device.push(path, workdir, ref.filename)
        for ref, path in context.files.inputs:  # several files under one name: comma-joined
            pushed = device.push(path, workdir, ref.filename)
            known = placed["input_files"].get(ref.name)
            placed["input_files"][ref.name] = f"{known},{pushed}" if known else pushed
        if context.program:
            program = Path(context.program)
            placed["program"] = device.push(program, workdir, program.name)
        return placed

    def _lookup(self, context: RunContext, placed: dict[str, Any], index: int) -> Lookup:
        case = context.case
        builtins = {
            **placed,
            "TGTDIR": context.workdir,
            "HOSTDIR": str(context.hostdir),
            "DEVICEHASH": context.device.info.hash,
            "INDEX": index,
            "warmup": context.warmup,
            "iter": context.iterations,
        }
        lookup = chained(builtins, case.test, case.model)
        for ref in case.output_files:  # their locations may name {TGTDIR} and other fields
            placed["output_files"][ref.name] = fill(ref.location, lookup)
        return lookup

    def _words(self, context: RunContext, template: str) -> list[str]:
        try:
            return shlex.split(template)
        except ValueError as exc:
            raise RunnerError(
                f"{context.case.where}: cannot split command {template!r}: {exc}"
            ) from None

    def _argv(self, context: RunContext, template: str, lookup: Lookup) -> list[str]:
        argv = [fill(word, lookup) for word in self._words(context, template)]
        taskset = context.case.platform_args.get("taskset")
        return (["taskset", str(taskset)] if taskset else []) + argv

    def _run_command(
        self,
        context: RunContext,
        template: str,
        lookup: Lookup,
        on_host: bool = False,
        power: bool = False,
    ) -> CommandResult:
        pause = 0.0
        if on_host:
            device, cwd = context.host or context.device, str(context.hostdir)
            argv = [fill(word, lookup) for word in self._words(context, template)]
        else:
            device, cwd = context.device, context.workdir
            argv = self._argv(context, template, lookup)
            pause = float(context.case.platform_args.get("sleep_before_run") or 0)
        env = {name: fill(value, lookup) for name, value in command_env(context).items()}
        try:
            if power:
                result = run_power_test(context, argv, env, context.time_left(), pause)
            else:
                time.sleep(min(pause, context.time_left()))
                timeout = context.time_left()
                result = device.run(argv, env=env, cwd=cwd, timeout=timeout)
        except DeviceError as exc:
            raise RunnerError(f"{context.case.where}: {exc}") from None
        if result.timed_out:
            raise RunnerError(
                f"{context.case.where}: {shlex.join(argv)} ran past its timeout of "
                f"{context.timeout:g} s and was killed; its output ended with:\n{result.tail()}"
            )
        if result.returncode != 0:
            raise RunnerError(
                f"{context.case.where}: {shlex.join(argv)} exited with code {result.returncode}; "
                f"its output ended with:\n{result.tail()}"
            )
        return result

    def _pull_outputs(self, context: RunContext, placed: dict[str, Any]) -> dict[str, Path]:
        """Copy ``output_files`` to the host; their host paths by name."""
        pulled = {}
        for ref in context.case.output_files:
            local = self._pulled_path(context, ref.filename)
            try:
                context.device.pull(placed["output_files"][ref.name], local)
            except OSError as exc:
                raise RunnerError(
                    f"{context.case.where}: output file {ref.name!r} was not written at "
                    f"{placed['output_files'][ref.name]}: {exc}"
                ) from None
            pulled[ref.name] = local
        return pulled

    def _pulled_path(self, context: RunContext, filename: str) -> Path:
        return context.hostdir / "output" / filename

    def _record(self, context: RunContext, outputs: list[CommandResult]) -> None:
        lines = [line for result in outputs for line in result.output_lines]
        if context.case.metric == GENERATION and _record_generation(context, outputs, lines):
            return
        parsed = parse_observer_lines(lines, context.observer_prefixes)
        if not parsed.records and not context.recorder.records:  # nor a results file's
            raise RunnerError(
                f"{context.case.where}: the commands printed no metric rows (lines with one of "
                f"the prefixes {list(context.observer_prefixes)} followed by a JSON object); "
                f"their output ended with:\n{outputs[-1].tail()}"
            )
        for record in parsed.records.values():
            context.recorder.add(record)
            operator = operator_of(record)
            if operator is not None:
                context.recorder.add_operator(operator)
        if parsed.custom_output:
            context.recorder.extra["custom_output"] = parsed.custom_output
        if parsed.skipped_lines:  # counted and shown in the summary, never dropped unseen
            unparsed = context.recorder.extra.setdefault(
                "unparsed_rows", {"count": 0, "examples": []}
            )
            unparsed["count"] += len(parsed.skipped_lines)
            unparsed["examples"] = (unparsed["examples"] + parsed.skipped_lines)[:3]

    def _record_files(self, context: RunContext, pulled: Mapping[str, Path]) -> None:
        """What the output files pulled back hold: ExecuTorch's benchmark apps'
        ``benchmark_results.json`` gives its metrics (one value each), models and device; in a
        generation test, llama-bench's results (``-o json|jsonl|csv``) written to a file."""
        for path in pulled.values():
            if context.case.metric == GENERATION:
                _record_llama_bench(context, path.read_text(errors="replace"))
            if path.name != RESULTS_FILE:
                continue
            where = f"{context.case.where} {path.name}"
            results = parse_benchmark_results(path.read_text(), where)
            for record in results.records:
                context.recorder.add(record)
            context.recorder.extra["executorch_benchmark"] = {
                "models": results.models,
                "device": results.device,
            }


def _record_generation(context: RunContext, outputs: list[CommandResult], lines: list[str]) -> bool:
    """A generation test's figures from what its commands printed: llama-bench's results or
    ExecuTorch's LLM runner's stats lines; whether there were any (or came from a file)."""
    stdout = "\n".join(result.stdout for result in outputs)
    found = _record_llama_bench(context, stdout)
    for record in parse_executorch_llm(lines, context.observer_prefixes):
        context.recorder.add(record)
        found = True
    return found or bool(context.recorder.records)


def _record_llama_bench(context: RunContext, text: str) -> bool:
    parsed = parse_llama_bench(text)
    if parsed is None:
        return False
    for record in parsed.records:
        context.recorder.add(record)
    context.recorder.extra.setdefault("llama_bench", []).extend(parsed.settings)
    return True


def _read_outputs(context: RunContext, pulled: Mapping[str, Path]) -> dict[str, Any]:
    """The output files that have a golden file of the same name, as arrays; a raw one
    (``.bin``, ``.raw``: bytes only, as ExecuTorch's runner writes them) takes its golden's
    type and shape."""
    arrays = {}
    for ref, golden in context.files.goldens:
        path = pulled.get(ref.name)
        if path is None:
            raise RunnerError(
                f"{context.case.where} {ref.where}: no output file is named {ref.name!r} "
                f"to compare with it; output_files has {sorted(pulled)}"
            )
        if path.suffix.lower() in RAW_SUFFIXES:
            like = read_tensor(golden, ref.name)
            arrays[ref.name] = read_tensor(path, ref.name, like.dtype, like.shape)
        else:
            arrays[ref.name] = read_tensor(path, ref.name)
    return arrays
