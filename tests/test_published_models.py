"""A published streaming model, as a model team would bring it: silero-vad's voice activity
detector from its wheel (fetched from the package index at test time). Its ONNX file takes
three inputs, one a constant (the sample rate), and its TorchScript module keeps its recurrent
state between calls: the golden check compares the first call after loading."""

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest import Pytester

from .helpers import metrics_of, write_json, written_run

FRAME = (np.sin(np.arange(512, dtype=np.float32) / 7.0) * 0.5)[None, :]


def vad_spec(model: str, fmt: str, stateful: bool, **test: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {
            "name": "vad",
            "format": fmt,
            "files": {"model": {"filename": model, "location": model}},
            "stateful": stateful,
        },
        "tests": [{"identifier": "frame", "metric": "delay", "iter": 10, "warmup": 3, **test}],
    }
    return spec


def test_the_onnx_detector_runs_with_its_sample_rate_as_a_constant(
    pytester: Pytester, silero_vad: Path
) -> None:
    pytest.importorskip("onnxruntime")
    (pytester.path / "silero_vad.onnx").write_bytes((silero_vad / "silero_vad.onnx").read_bytes())
    inputs = {
        "input": {"shapes": [[1, 512]], "type": "float"},
        "state": {"shapes": [[2, 1, 128]], "type": "float", "value": 0.0},
        "sr": {"shapes": [[]], "type": "int64", "value": 16000},
    }
    write_json(
        pytester.path / "vad.json", vad_spec("silero_vad.onnx", "onnx", False, inputs=inputs)
    )
    result = pytester.runpytest("--aibench-spec=vad.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    recorded = written_run(pytester.path)["items"][0]["extra"]["inputs"]
    assert recorded["sr"] == {"shape": [], "type": "int64", "source": "value"}
    assert recorded["state"]["source"] == "value"
    assert recorded["input"]["source"] == "random"


@pytest.mark.parametrize("stateful", [True, False])
def test_the_torchscript_detector_is_checked_on_its_first_call_when_stateful(
    pytester: Pytester, silero_vad: Path, stateful: bool
) -> None:
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; its users still ship it
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(silero_vad / "silero_vad.jit"))
        golden = module(torch.from_numpy(FRAME), 16000).detach().numpy()  # its first call
    (pytester.path / "silero_vad.jit").write_bytes((silero_vad / "silero_vad.jit").read_bytes())
    np.save(pytester.path / "x.npy", FRAME)
    np.save(pytester.path / "golden.npy", golden)
    test = {
        "inputs": {"sr": {"shapes": [[]], "type": "int64", "value": 16000}},
        "input_files": {"x": {"filename": "x.npy", "location": "x.npy"}},  # shape from the file
        "golden_files": {"output": {"filename": "golden.npy", "location": "golden.npy"}},
    }
    write_json(pytester.path / "vad.json", vad_spec("silero_vad.jit", "pytorch", stateful, **test))
    # a process of its own: torch.profiler registers operator libraries that cannot be
    # registered twice in one process, and pytester forgets the modules between runs
    result = pytester.runpytest_subprocess("--aibench-spec=vad.json", "--aibench-json=run.json")
    if stateful:
        result.assert_outcomes(passed=1)
        errors = metrics_of(written_run(pytester.path)["items"][0])
        assert errors["output max_abs_error"]["values"] == [0.0]
    else:  # the call compared came after warmup and timing moved the state on
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*output 'output' differs from its golden output*"])
    assert json.loads((pytester.path / "run.json").read_text())["items"][0]["extra"]["inputs"]
