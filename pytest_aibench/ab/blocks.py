"""Control and treatment interleaved in paired blocks on one device, block after block until
the sequential rule decides every gated metric; a suspected regression run again from a fresh
start (``--aibench-verify``). What the verdicts mean for the item is decided in verdicts/ab.py,
and recorded: the item recorder (items.py) fails the item."""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import AibenchWarning
from ..execution import Execution
from ..options import Settings
from ..recorder import Recorder
from ..records import MetricDict
from ..verdicts.ab import ab_failure
from ..verdicts.gate import rules_for
from ..verdicts.rules import Rule
from ..verdicts.sequential import SequentialAB
from ..verdicts.statistics import Verdict, regressions
from .cpus import CpuShare, pinned
from .sides import Side, Sides


@dataclass
class ABRun:
    """One A/B run of an item: both sides' samples, the verdicts, how many blocks it took."""

    control: Recorder
    treatment: Recorder
    verdicts: list[Verdict]
    blocks: int
    seconds: float


def ab_rules(execution: Execution, metrics: Sequence[MetricDict]) -> list[Rule]:
    settings = execution.settings
    return rules_for(metrics, settings.fail_on, settings.ab_min_effect)


TURN = 5  # calls per turn when the sides take turns inside a block
EARLY_EPOCHS = (4, 7)  # blocks after which workers restart before the first look (at 10)


def interleave(execution: Execution, sides: Sides, iterations: int, seed: int) -> ABRun:
    """Control and treatment in blocks on one device, each side once per block (its own warmup
    included) in an order shuffled per block, with a cooldown between blocks. Blocks continue
    until the sequential rule decides every gated metric or ``--aibench-ab-max-time`` runs
    out (``--aibench-ab-time-limit`` while the interval narrows; verdicts/sequential.py).
    Worker sides restart now and then (:func:`_new_epoch`), so that the blocks come from
    several processes; the budget counts the blocks, not those starts."""
    settings = execution.settings
    runs = {"control": sides.control, "treatment": sides.treatment}
    samples = {"control": Recorder(1, 0), "treatment": Recorder(1, 0)}
    per_block = max(1, math.ceil(iterations / settings.ab_blocks))
    warmup = execution.counts()[1]
    shuffler = random.Random(seed)
    decision: SequentialAB | None = None
    started = time.monotonic()
    restarts = 0.0  # seconds spent starting workers again: the budget counts blocks only
    epoch_began, restart_cost = started, 0.0
    blocks = 0
    verdicts: list[Verdict] | None = None
    while verdicts is None:
        block = _block(runs, per_block, warmup, shuffler)
        for side in runs:
            samples[side].merge(block[side])
        if any(block[side].failures for side in runs):
            verdicts = []  # a golden mismatch: the item fails for it, not judged
            break
        control, treatment = (block[s].results()["metrics"] for s in ("control", "treatment"))
        decision = decision or SequentialAB(ab_rules(execution, treatment), settings.alpha)
        decision.add(control, treatment)
        blocks += 1
        looks = decision.looks
        verdicts = _decided(decision, blocks, time.monotonic() - started - restarts, settings)
        epoch = time.monotonic() - epoch_began
        if verdicts is None and _new_epoch(decision.looks > looks, blocks, epoch, restart_cost):
            restarting = time.monotonic()
            sides.restart()
            epoch_began = time.monotonic()
            restart_cost = epoch_began - restarting
            restarts += restart_cost
        if verdicts is None and settings.cooldown:
            time.sleep(settings.cooldown)
    seconds = time.monotonic() - started
    return ABRun(samples["control"], samples["treatment"], verdicts, blocks, seconds)


def _new_epoch(looked: bool, blocks: int, epoch_seconds: float, restart_cost: float) -> bool:
    """Whether the workers start afresh now: after blocks 4 and 7 and after every look that
    leaves the item undecided (two processes, or two sessions, of identical code differ by a
    steady 0.2-0.5% that pairing cannot cancel, measured here; over several epochs it averages
    out instead of deciding the item), but only once the epoch has lasted as long as its start
    took. Where workers start slowly (ExecuTorch's import alone takes 7 s here) restarts so
    take at most half the time; an A/A of a 0.1 ms network restarted at each of 17 looks
    spent 178 of its 242 s starting workers."""
    return (looked or blocks in EARLY_EPOCHS) and epoch_seconds >= restart_cost


def _block(
    runs: dict[str, Side], per_block: int, warmup: int, shuffler: random.Random
) -> dict[str, Recorder]:
    """One block: each side's ``per_block`` runs. Sides that can time more calls in place
    (workers) take turns of TURN calls in shuffled order, so that the two sides' samples lie
    milliseconds apart throughout the block: this machine's speed switches between regimes
    within a fraction of a second, and samples this close share one (measured: a pair's spread
    1.5% in turns of 5 calls, 8% in blocks of 50). Other sides run whole, one after the other."""
    order = list(runs)
    shuffler.shuffle(order)
    block = {side: Recorder(1, 0) for side in order}
    timers = {side: timer for side in order if (timer := runs[side].timer()) is not None}
    if len(timers) < len(order):
        for side in order:
            runs[side].run_block(block[side], per_block)
        return block
    taken: dict[str, list[float]] = {side: [] for side in order}
    for done in range(0, per_block, TURN):
        for side in order:
            taken[side] += timers[side](min(TURN, per_block - done), warmup if done == 0 else 0)
        shuffler.shuffle(order)
    for side, values in taken.items():
        block[side].record("NET", "latency", "us", values)
    return block


def _decided(
    decision: SequentialAB, blocks: int, elapsed: float, settings: Settings
) -> list[Verdict] | None:
    """The verdicts once the rule decides or the time budget is spent; ``None``: one more
    block. The blocks asked for (``--aibench-ab-blocks``) come first, budget or not."""
    if blocks < settings.ab_blocks:
        return None
    if not decision.series:
        return []  # no metric of the item is gated: nothing to decide
    if decision.due() and (verdicts := decision.look()) is not None:
        return verdicts
    if elapsed <= settings.ab_max_time:
        return None
    if elapsed <= settings.ab_time_limit and decision.narrowing():
        return None  # past the budget, up to the limit, while the interval narrows
    return decision.final()


def run_ab(execution: Execution, sides: Sides, recorder: Recorder, iterations: int) -> None:
    """A/B, then up to ``--aibench-verify`` re-runs of a suspected regression; the verdicts of
    the last run are the item's, and verdicts/ab.py says whether they fail it."""
    settings = execution.settings
    attempts = 1 + max(0, settings.verify)
    if sides.share.note:
        warnings.warn(AibenchWarning(f"{execution.case.where}: {sides.share.note}"), stacklevel=1)
    with pinned(sides.share):
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                # A re-run starts afresh (new workers, the model loaded again): whatever offset
                # stays with a worker process and its loaded sessions (two processes of identical
                # code differ here by +0.8%) no pair can cancel; a fresh start does, and a real
                # regression survives it.
                sides.close()
            ab = interleave(execution, sides, iterations, settings.seed + attempt - 1)
            if not regressions(ab.verdicts):
                break
    _keep(recorder, ab, attempt, sides.share)
    failure = ab_failure(
        ab.verdicts,
        control=sides.label,
        runs=(attempt, attempts),
        spent=(ab.blocks, ab.seconds),
        fail_inconclusive=settings.fail_inconclusive,
    )
    if failure:
        recorder.failures.append(failure)


def _keep(recorder: Recorder, ab: ABRun, attempts: int, share: CpuShare) -> None:
    """The last A/B run's treatment samples are the item's; the control's go in its extra,
    with the CPUs and threads of both sides."""
    recorder.merge(ab.treatment)
    recorder.failures += [f"the A/B control side: {failure}" for failure in ab.control.failures]
    recorder.extra["ab"] = {
        "control": ab.control.results()["metrics"],
        "runs": attempts,
        "blocks": ab.blocks,
        "seconds": round(ab.seconds, 3),
        "sides": share.record(),
    }
    if share.note:
        recorder.extra["ab"]["note"] = share.note
    recorder.comparison = "ab"
    recorder.verdicts = [verdict.to_dict() for verdict in ab.verdicts]
