"""A stateful model (the spec's ``stateful``): golden files and the agreement compare the first
call after loading, on fresh state, not a call after warmup, timing and profiling moved it."""

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest import Pytester

from .helpers import metrics_of, write_json, written_run

pytest.importorskip("torch")
import torch

X = np.arange(4, dtype=np.float32).reshape(1, 4) + 1.0


class Counting(torch.nn.Module):
    """``y = x * n`` where n counts the calls since loading: a state carried between calls, as a
    recurrent or streaming model's hidden state is."""

    calls: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * self.calls


def counting_module(path: Path) -> None:
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; its users still ship it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(Counting()), str(path))


def project(pytester: Pytester, **test: Any) -> None:
    counting_module(pytester.path / "counting.pt")
    np.save(pytester.path / "x.npy", X)
    np.save(pytester.path / "y.npy", X)  # the first call's output: x * 1
    spec = {
        "model": {
            "name": "counting",
            "format": "pytorch",
            "files": {"model": {"filename": "counting.pt", "location": "counting.pt"}},
        },
        "tests": [
            {
                "identifier": "stream",
                "metric": "delay",
                "iter": 5,
                "warmup": 2,
                "inputs": {"x": {"shapes": [[1, 4]], "type": "float"}},
                "input_files": {"x": {"filename": "x.npy", "location": "x.npy"}},
                "golden_files": {"output": {"filename": "y.npy", "location": "y.npy"}},
                **test,
            }
        ],
    }
    write_json(pytester.path / "s.json", spec)


def test_a_stateful_model_is_checked_on_its_first_call(pytester: Pytester) -> None:
    project(pytester, stateful=True)
    result = pytester.runpytest_subprocess("--aibench-spec=s.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    errors = metrics_of(written_run(pytester.path)["items"][0])
    assert errors["output max_abs_error"]["values"] == [0.0]


def test_without_the_field_the_moved_state_fails_the_golden_check(pytester: Pytester) -> None:
    """The same model and golden file, ``stateful`` left out: the last timed call (the 7th since
    loading, after 2 warmup and the first inference) is compared, and fails."""
    project(pytester)
    result = pytester.runpytest_subprocess("--aibench-spec=s.json", "--aibench-json=run.json")
    result.assert_outcomes(failed=1)
    errors = metrics_of(written_run(pytester.path)["items"][0])
    assert errors["output max_abs_error"]["values"] == [pytest.approx(float(X.max()) * 7)]
