"""ONNX Runtime items, in process, on a model made by the repository's own script."""

import json
import sys
from pathlib import Path

import pytest

from .helpers import write_json

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "specifications/models"))
import make_mlp  # noqa: E402

sys.path.pop(0)


def run_file(pytester) -> dict:
    return json.loads((pytester.path / "run.json").read_text())


def metrics_of(item: dict) -> dict:
    return {f"{m['type']} {m['metric']}": m for m in item["metrics"]}


def write_mlp(path: Path) -> Path:
    path.write_bytes(make_mlp.onnx_bytes())
    return path


def test_onnxruntime_runs_the_model_with_spec_shapes_and_settings(pytester):
    write_mlp(pytester.path / "mlp.onnx")
    write_json(pytester.path / "mlp.json", {
        "model": {"name": "mlp", "format": "onnx",
                  "files": {"model": {"filename": "mlp.onnx", "location": "mlp.onnx"}}},
        "tests": [
            {"identifier": "{ID}", "metric": "delay", "warmup": 2, "iter": 25,
             "inputs": {"x": {"shapes": [[1, 64], [8, 64]], "type": "float"}}},
            {"identifier": "unfused", "metric": "delay", "iter": 10,
             "onnxruntime": {"graph_optimization_level": "disable", "intra_op_num_threads": 1}},
        ]})
    result = pytester.runpytest("--aibench-spec=mlp.json", "--aibench-json=run.json",
                                "-m", "onnx and delay")
    result.assert_outcomes(passed=3)
    items = {item["case"]["identifier"]: item for item in run_file(pytester)["items"]}
    assert items["1"]["extra"]["inputs"] == {"x": {"shape": [8, 64], "type": "float32"}}
    assert items["unfused"]["extra"]["inputs"]["x"]["shape"] == [1, 64]  # symbolic batch -> 1
    assert items["unfused"]["extra"]["onnxruntime"]["graph_optimization_level"] == "disable"
    assert items["unfused"]["extra"]["onnxruntime"]["intra_op_num_threads"] == 1
    assert len(metrics_of(items["0"])["NET latency"]["values"]) == 25
    assert len(metrics_of(items["unfused"])["NET latency"]["values"]) == 10


def test_onnxruntime_reads_input_files(pytester):
    write_mlp(pytester.path / "mlp.onnx")
    (pytester.path / "x.txt").write_text("\n".join(["0.5"] * 64))
    (pytester.path / "short.txt").write_text("1\n2\n")
    files = {"model": {"filename": "mlp.onnx", "location": "mlp.onnx"}}
    write_json(pytester.path / "mlp.json", {
        "model": {"name": "mlp", "format": "onnx", "files": files},
        "tests": [{"identifier": "ok", "metric": "delay", "iter": 3,
                   "input_files": {"x": {"filename": "x.txt", "location": "x.txt"}}},
                  {"identifier": "short", "metric": "delay", "iter": 3,
                   "input_files": {"x": {"filename": "short.txt", "location": "short.txt"}}}]})
    result = pytester.runpytest("--aibench-spec=mlp.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*holds 2 values, which do not fit shape [[]1, 64[]]*"])
