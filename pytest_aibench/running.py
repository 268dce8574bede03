"""Running one case: once, or in A/B mode interleaved with its control side (ab/), and with
its cold start measured again in fresh processes where asked (cold.py)."""

from __future__ import annotations

from .ab.blocks import run_ab
from .ab.sides import ab_sides
from .cold import cold_start_in_fresh_processes, measures_cold_start
from .execution import Execution
from .recorder import Recorder


def execute(execution: Execution, recorder: Recorder) -> None:
    settings = execution.settings
    iterations = execution.counts()[0]
    sides = ab_sides(execution)
    if sides is None:
        execution.run(recorder, settings.program, iterations)
        if measures_cold_start(execution):
            cold_start_in_fresh_processes(execution, recorder, settings.cold)
        return
    try:
        run_ab(execution, sides, recorder, iterations)
    finally:
        sides.close()
