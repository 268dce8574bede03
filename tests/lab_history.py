"""A lab's history as a team's nightly job would leave it: one run per commit, every model on
every device, each p50 with this machine's kind of noise (1.5% from run to run), and a few
regressions planted at known commits. The regressions page must name those and nothing else.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from pytest_aibench.records import RunFile
from pytest_aibench.store import history

from .helpers import case_dict, item_record, metric_record, run_file, verdict_dict

MODELS = ("mobilenet_v2", "resnet18", "bert_tiny", "kws_dscnn", "mlp")
DEVICES = {
    "Pixel 7": {"kind": "android", "id": "pixel-7", "abi": "arm64-v8a", "os": "Android 14"},
    "Galaxy S23": {"kind": "android", "id": "s23", "abi": "arm64-v8a", "os": "Android 14"},
    "rpi5": {"kind": "ssh", "id": "pi@rpi5", "abi": "aarch64", "os": "Linux 6.6"},
}
COMMITS = 20
NOISE = 0.015


@dataclass(frozen=True)
class Planted:
    model: str
    device: str
    commit: int  # the first commit that is slower
    change: float


PLANTED = (
    Planted("mobilenet_v2", "Pixel 7", 13, 0.15),
    Planted("bert_tiny", "rpi5", 8, 0.10),
)
# a step that a later commit took back: no regression stands
TAKEN_BACK = Planted("resnet18", "Galaxy S23", 5, 0.12), 10
# the newest run of this one failed its golden check: failed, not regressed
BROKEN = ("kws_dscnn", "Galaxy S23")


def commit_id(number: int) -> str:
    return hashlib.sha1(f"commit {number}".encode()).hexdigest()


def nightly_run(number: int, rng: random.Random, plant: bool = True) -> RunFile:
    items = []
    for model_index, model in enumerate(MODELS):
        for device_name, device in DEVICES.items():
            base = 2.0 + 3.0 * model_index
            level = base * (_slowdown(model, device_name, number) if plant else 1.0)
            p50 = level * rng.lognormvariate(0, NOISE)
            values = [p50 * (1 + 0.02 * ((i * 7) % 9 - 4) / 4) for i in range(25)]
            items.append(
                item_record(
                    f"lab.json::{model}[{model}-{device['id']}]",
                    metric_record(values),
                    case=case_dict(model=model, identifier=model, framework="tflite"),
                    device={**device, "name": device_name, "hash": device["id"]},
                    **_outcome(model, device_name, number, plant),
                )
            )
    commit: dict[str, Any] = {"id": commit_id(number), "branch": "main", "time": None}
    return run_file(
        *items,
        id=f"nightly-{number:02d}",
        created=f"2026-11-{number + 1:02d}T02:00:00+00:00",
        commit=commit | {"dirty": False},
    )


def _outcome(model: str, device: str, number: int, plant: bool) -> dict[str, Any]:
    """How the item ended: the newest run of BROKEN failed; the newest of a planted regression
    failed its gate against the runs before (a regressed item fails)."""
    if not plant or number != COMMITS - 1:
        return {}
    if (model, device) == BROKEN:
        return {"outcome": "failed"}
    for planted in PLANTED:
        if (planted.model, planted.device) == (model, device):
            verdict = verdict_dict("NET latency", "regressed", 1 + planted.change)
            return {"outcome": "failed", "verdicts": [verdict]}
    return {}


def _slowdown(model: str, device: str, number: int) -> float:
    factor = 1.0
    for planted in PLANTED:
        if (planted.model, planted.device) == (model, device) and number >= planted.commit:
            factor *= 1 + planted.change
    step, back = TAKEN_BACK
    if (step.model, step.device) == (model, device) and step.commit <= number < back:
        factor *= 1 + step.change
    return factor


def fill(location: history.Location, seed: int = 7, plant: bool = True) -> None:
    """The lab's history; ``plant=False``: the same lab with nothing changed."""
    rng = random.Random(seed)
    for number in range(COMMITS):
        history.append(location, nightly_run(number, rng, plant))
