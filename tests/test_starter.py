"""``aibench spec MODEL``: a starter spec from a model file's own inputs, tried on a published
network (basic-pitch's ONNX and LiteRT files, fetched from the package index at test time)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pytest import Pytester

from .helpers import written_run

pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")


def aibench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_aibench", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", ["nmp.onnx", "nmp.tflite"])
def test_a_starter_spec_of_a_published_model_runs_as_written(
    pytester: Pytester, basic_pitch: Path, name: str
) -> None:
    (pytester.path / "models").mkdir()
    (pytester.path / "models" / name).write_bytes((basic_pitch / name).read_bytes())
    made = aibench("spec", f"models/{name}", "--out", "specs/nmp.json", cwd=pytester.path)
    assert made.returncode == 0, made.stderr
    # the network takes audio frames of any count: the open dimension is said and set to 1
    assert "leaves dimension 0" in made.stderr and "1 chosen" in made.stderr
    spec = json.loads((pytester.path / "specs/nmp.json").read_text())
    assert spec["model"]["files"]["model"]["location"] == f"../models/{name}"
    ((input_name, declared),) = spec["tests"][0]["inputs"].items()
    assert declared == {"shapes": [[1, 43844, 1]], "type": "float32"}
    assert input_name in ("input_2", "serving_default_input_2:0")  # the model's own name
    result = pytester.runpytest("--aibench-spec=specs/nmp.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    item = written_run(pytester.path)["items"][0]
    assert item["extra"]["inputs"][input_name]["shape"] == [1, 43844, 1]


def test_a_file_it_cannot_read_is_one_line_that_says_what_to_write(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"not read")
    refused = aibench("spec", "model.pt", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.startswith("aibench: model.pt: cannot read the inputs of a .pt file")
    assert '"inputs": {"x": {"shapes"' in refused.stderr
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    failed = aibench("spec", "broken.onnx", cwd=tmp_path)
    assert failed.returncode == 1 and "ONNX Runtime cannot load it" in failed.stderr
