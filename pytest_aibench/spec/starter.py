"""A starter spec for one model file: what ``aibench spec MODEL`` prints. Pure.

The spec names the model by its file, runs one delay test with the model's own inputs, and
gives every symbolic dimension (a batch size the model leaves open) the value 1, saying so."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STARTER_ITERATIONS = 50


@dataclass(frozen=True)
class ModelInput:
    name: str
    shape: list[Any]  # an int per dimension; a symbolic one as the model names it (or None)
    type: str  # numpy's name: float32, int64


@dataclass(frozen=True)
class ModelFile:
    format: str  # the spec's "format"
    framework: str  # the spec's "framework"
    inputs: list[ModelInput]


def starter_spec(
    model: Path, found: ModelFile, spec_folder: Path
) -> tuple[dict[str, Any], list[str]]:
    """The spec, whose file ``location`` is relative to the folder the spec will live in, and
    one line per dimension it had to choose."""
    notes: list[str] = []
    inputs = {}
    for one in found.inputs:
        shape = []
        for axis, dim in enumerate(one.shape):
            if isinstance(dim, int) and dim > 0:
                shape.append(dim)
            else:
                shape.append(1)
                named = f" ({dim!r})" if dim is not None else ""
                notes.append(
                    f"input {one.name!r} leaves dimension {axis}{named} open: 1 chosen; list "
                    "more shapes in its 'shapes' to measure others"
                )
        inputs[one.name] = {"shapes": [shape], "type": one.type}
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.stem) or "model"
    location = Path(os.path.relpath(model.resolve(), spec_folder.resolve())).as_posix()
    spec = {
        "model": {
            "name": name,
            "format": found.format,
            "framework": found.framework,
            "files": {"model": {"filename": model.name, "location": location}},
        },
        "tests": [
            {
                "identifier": "{ID}",
                "metric": "delay",
                "warmup": 5,
                "iter": STARTER_ITERATIONS,
                "inputs": inputs,
            }
        ],
    }
    return spec, notes
