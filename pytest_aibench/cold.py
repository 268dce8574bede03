"""``--aibench-cold N``: the cold-start metrics measured again in N fresh processes."""

from __future__ import annotations

import sys

from .ab.sides import block_of
from .ab.worker import WorkerProcess
from .execution import Execution
from .recorder import Recorder

COLD_METRICS = ("load", "first_inference", "peak_memory", "memory_increment")
# what a worker process can run
IN_PROCESS_RUNNERS = ("onnxruntime", "tflite", "pytorch", "executorch", "genai")


def measures_cold_start(execution: Execution) -> bool:
    """Whether --aibench-cold applies: an in-process case (a program starts afresh anyway)."""
    settings = execution.settings
    in_process = execution.runner.name in IN_PROCESS_RUNNERS
    return bool(settings.cold and in_process and not execution.runs_commands(settings.program))


def cold_start_in_fresh_processes(execution: Execution, recorder: Recorder, count: int) -> None:
    """The cold-start metrics again, one sample from each of ``count`` fresh processes (the A/B
    worker, ab/worker.py), replacing the one measured in pytest's process, where other items
    ran before and the file cache is warm from the run just done."""
    block = block_of(execution, execution.files, iterations=1, warmup=0)
    samples: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for _ in range(count):
        worker = WorkerProcess(sys.executable)
        try:
            fresh = worker.run(block)
        finally:
            worker.close()
        for name in COLD_METRICS:
            if (record := fresh.records.get(f"NET {name}")) is not None:
                samples.setdefault(name, []).extend(record.values)
                units[name] = record.unit
    for name, values in samples.items():
        recorder.records.pop(f"NET {name}", None)
        recorder.record("NET", name, units[name], values)
    recorder.extra["cold"] = {"fresh_processes": count}
