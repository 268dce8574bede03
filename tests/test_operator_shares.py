"""Operator shares that add up: a control-flow node counts its own time, the nodes of its
subgraph theirs, never both; in A/B mode a side's shares are of that side's profiled runs."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest import Pytester

from pytest_aibench.parsers.ort_profile import operators_from_profile

from .helpers import write_json, written_run


def node(name: str, op: str, ts: float, dur: float) -> dict[str, Any]:
    return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "pid": 1,
            "tid": 7, "args": {"op_name": op}}  # fmt: skip


def test_a_nested_node_is_counted_once_and_its_parent_keeps_its_own_time() -> None:
    trace = [
        {"cat": "Session", "name": "model_run", "ts": 0.0, "dur": 100.0},
        node("loop", "Loop", 10.0, 80.0),  # the Loop ran its body twice inside its own event
        node("body_if", "If", 15.0, 30.0),
        node("then_mm", "MatMul", 20.0, 20.0),  # nested two deep
        node("body_if", "If", 50.0, 30.0),
        node("then_mm", "MatMul", 55.0, 20.0),
        node("relu", "Relu", 91.0, 5.0),
    ]
    operators = {op.name: op for op in operators_from_profile(trace, runs=1)}
    assert operators["loop"].values == [20.0]  # 80 less its two If events
    assert operators["body_if"].values == [10.0, 10.0]  # each 30 less its MatMul
    assert operators["then_mm"].values == [20.0, 20.0]
    assert sum(sum(op.values) for op in operators.values()) == 85.0  # the top-level 80 + 5


def test_events_of_other_threads_are_not_nested() -> None:
    outer = node("the_if", "If", 0.0, 50.0)
    other_thread = {**node("mm", "MatMul", 10.0, 20.0), "tid": 8}
    operators = {op.name: op for op in operators_from_profile([outer, other_thread], runs=1)}
    assert operators["the_if"].values == [50.0] and operators["mm"].values == [20.0]


def if_model(path: Path, layers: int = 3) -> None:
    """An If whose taken branch holds a chain of MatMuls: the subgraph is most of the work."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((512, 512)).astype(np.float32) / 24
    nodes, previous = [], "x"
    for layer in range(layers):
        nodes.append(helper.make_node("MatMul", [previous, "w"], [f"h{layer}"], name=f"mm{layer}"))
        previous = f"h{layer}"
    nodes.append(helper.make_node("Identity", [previous], ["taken"], name="taken_out"))
    taken_out = helper.make_tensor_value_info("taken", TensorProto.FLOAT, [1, 512])
    taken = helper.make_graph(nodes, "taken", [], [taken_out])
    skipped_out = helper.make_tensor_value_info("skipped", TensorProto.FLOAT, [1, 512])
    skipped = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["skipped"], name="skipped_out")],
        "skipped",
        [],
        [skipped_out],
    )
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["x"], ["total"], name="sum", keepdims=0),
            helper.make_node("Less", ["total", "limit"], ["small"], name="less"),
            helper.make_node(
                "If", ["small"], ["y"], name="branch", then_branch=taken, else_branch=skipped
            ),
            helper.make_node("Relu", ["y"], ["out"], name="relu"),
        ],
        "branching",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 512])],
        [
            helper.make_tensor("w", TensorProto.FLOAT, [512, 512], weight.ravel()),
            helper.make_tensor("limit", TensorProto.FLOAT, [], [1e9]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def branching_spec() -> dict[str, Any]:
    return {
        "model": {
            "name": "branching",
            "format": "onnx",
            "framework": "onnxruntime",
            "files": {"model": {"filename": "branching.onnx", "location": "models/branching.onnx"}},
        },
        "tests": [
            {
                "identifier": "if",
                "metric": "delay",
                "iter": 30,
                "onnxruntime": {"graph_optimization_level": "disable", "intra_op_num_threads": 1},
            }
        ],
    }


def shares(pytester: Pytester) -> dict[str, float]:
    item = written_run(pytester.path)["items"][0]
    return {op["name"]: op["share"] or 0.0 for op in item["operators"]}


def test_a_real_if_model_lists_its_subgraph_and_its_shares_add_up(pytester: Pytester) -> None:
    pytest.importorskip("onnxruntime")
    if_model(pytester.path / "models/branching.onnx")
    write_json(pytester.path / "branching.json", branching_spec())
    result = pytester.runpytest("--aibench-spec=branching.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    found = shares(pytester)
    assert {"branch", "mm0", "mm1", "mm2", "relu"} <= set(found)
    # The nodes run inside the profiled whole-net runs, so their own times cannot exceed them;
    # counting the If and its MatMuls both would come near twice the whole.
    assert sum(found.values()) <= 1.0
    assert found["branch"] < found["mm0"] + found["mm1"] + found["mm2"]


def test_ab_shares_are_of_the_side_s_own_profiled_runs(pytester: Pytester) -> None:
    pytest.importorskip("onnxruntime")
    base = pytester.path / "base"
    for root in (pytester.path, base):
        if_model(root / "models/branching.onnx")
    write_json(pytester.path / "branching.json", branching_spec())
    result = pytester.runpytest(
        "--aibench-spec=branching.json",
        f"--aibench-ab-control-root={base}",
        "--aibench-ab-min-effect=50%",  # the shares are the point, not the verdict
        "--aibench-json=run.json",
    )
    result.assert_outcomes(passed=1)
    assert 0.0 < sum(shares(pytester).values()) <= 1.0
