"""Inputs as real models need them: a constant input (a sample rate) beside random or file
inputs, and a TorchScript scalar argument given through ``inputs`` or ``input_files`` alike."""

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest import Pytester

from .helpers import metrics_of, write_json, written_run

pytest.importorskip("torch")
import torch

X = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
RATE = 16000


def scaled_by_rate_onnx(path: Path) -> None:
    """``y = x * float(rate)``, where ``rate`` is an int64 scalar input."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes=[
            helper.make_node("Cast", ["rate"], ["rate_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["x", "rate_f"], ["y"]),
        ],
        name="scaled",
        inputs=[
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8]),
            helper.make_tensor_value_info("rate", TensorProto.INT64, []),
        ],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def spec(fmt: str, key: str, filename: str, **test: Any) -> dict[str, Any]:
    return {
        "model": {
            "name": "scaled",
            "format": fmt,
            "files": {key: {"filename": filename, "location": filename}},
        },
        "tests": [
            {
                "identifier": "x",
                "metric": "delay",
                "iter": 3,
                "golden_files": {"y": {"filename": "y.npy", "location": "y.npy"}},
                **test,
            }
        ],
    }


def files(pytester: Pytester) -> None:
    np.save(pytester.path / "x.npy", X)
    np.save(pytester.path / "y.npy", X * RATE)
    np.save(pytester.path / "rate.npy", np.array(RATE, dtype=np.int64))


def test_a_constant_input_beside_an_input_file(pytester: Pytester) -> None:
    """The rate is a constant of the test, x comes from a file: both documented, together."""
    scaled_by_rate_onnx(pytester.path / "scaled.onnx")
    files(pytester)
    test = {
        "inputs": {"rate": {"shapes": [[]], "type": "int64", "value": RATE}},
        "input_files": {"x": {"filename": "x.npy", "location": "x.npy"}},
    }
    write_json(pytester.path / "s.json", spec("onnx", "model", "scaled.onnx", **test))
    result = pytester.runpytest("--aibench-spec=s.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    item = written_run(pytester.path)["items"][0]
    assert metrics_of(item)["y max_abs_error"]["values"] == [0.0]
    inputs = item["extra"]["inputs"]
    assert inputs["rate"] == {"shape": [], "type": "int64", "source": "value"}
    assert inputs["x"]["source"].startswith("file md5 ")


class Scaled(torch.nn.Module):
    """A TorchScript module whose second argument is a Python ``int``."""

    def forward(self, x: torch.Tensor, rate: int) -> torch.Tensor:
        return x * rate


def torchscript_scaled(path: Path) -> None:
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; its users still ship it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(Scaled()), str(path))


@pytest.mark.parametrize("rate_through", ["inputs", "input_files", "inputs only"])
def test_a_torchscript_int_argument_through_inputs_or_input_files(
    pytester: Pytester, rate_through: str
) -> None:
    torchscript_scaled(pytester.path / "scaled.pt")
    files(pytester)
    test: dict[str, Any] = {"input_files": {"x": {"filename": "x.npy", "location": "x.npy"}}}
    if rate_through == "inputs":
        test["inputs"] = {
            "x": {"shapes": [[1, 8]], "type": "float"},
            "rate": {"shapes": [[]], "type": "int64", "value": RATE},
        }
    elif rate_through == "input_files":  # no "inputs": each argument's shape and type from its file
        test["input_files"]["rate"] = {"filename": "rate.npy", "location": "rate.npy"}
    else:  # "rate" declared, "x" from its file: the module's order, not the spec's, is kept
        test["inputs"] = {"rate": {"shapes": [[]], "type": "int64", "value": RATE}}
    test["golden_files"] = {"output": {"filename": "y.npy", "location": "y.npy"}}
    write_json(pytester.path / "s.json", spec("pytorch", "model", "scaled.pt", **test))
    result = pytester.runpytest_subprocess("--aibench-spec=s.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    item = written_run(pytester.path)["items"][0]
    assert metrics_of(item)["output max_abs_error"]["values"] == [0.0]
    assert item["extra"]["inputs"]["rate"]["shape"] == []
