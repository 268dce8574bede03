"""Agreement across frameworks on converted models: tensors pair by what they are, not by what a
converter named them. Pairs built here (renamed, reordered) and a published one: Spotify's
basic-pitch ships one network as ONNX and as LiteRT in its wheel, fetched from the package index
when the test runs (never kept in the repository)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest import Pytester

from .helpers import case_of, metrics_of, write_json, written_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "specifications" / "models"))
import make_mlp

TFLITE_INPUT, TFLITE_OUTPUT = "serving_default_x:0", "StatefulPartitionedCall:0"


def spec(fmt: str, key: str, filename: str, **test: Any) -> dict[str, Any]:
    return {
        "model": {
            "name": "net",
            "format": fmt,
            "files": {key: {"filename": filename, "location": filename}},
        },
        "tests": [{"identifier": "x", "metric": "delay", "iter": 3, **test}],
    }


def run_both(pytester: Pytester, onnx_test: dict[str, Any], tflite_test: dict[str, Any]) -> Any:
    write_json(pytester.path / "onnx.json", spec("onnx", "model", "net.onnx", **onnx_test))
    write_json(pytester.path / "tflite.json", spec("tflite", "graph", "net.tflite", **tflite_test))
    result = pytester.runpytest(
        "--aibench-spec=onnx.json",
        "--aibench-spec=tflite.json",
        "--aibench-reference=onnxruntime",
        "--aibench-json=run.json",
    )
    result.assert_outcomes(passed=2)
    return result


def tflite_items(pytester: Pytester) -> dict[str, Any]:
    return {case_of(item)["framework"]: item for item in written_run(pytester.path)["items"]}


def renamed_tflite(content: bytes, names: dict[str, str]) -> bytes:
    """A LiteRT model with its tensors renamed as a converter names them."""
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    import flatbuffers

    model = schema.ModelT.InitFromPackedBuf(content, 0)
    for tensor in model.subgraphs[0].tensors:
        name = tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name
        tensor.name = names.get(name, name)
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_a_renamed_conversion_agrees_with_its_original(pytester: Pytester) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    (pytester.path / "net.onnx").write_bytes(make_mlp.onnx_bytes())
    renames = {"x": TFLITE_INPUT, "y": TFLITE_OUTPUT}
    (pytester.path / "net.tflite").write_bytes(renamed_tflite(make_mlp.tflite_bytes(), renames))
    result = run_both(pytester, {}, {})
    result.stdout.fnmatch_lines(["*aibench: agreement with onnxruntime*", "net[[]x[]]*0.00*"])
    items = tflite_items(pytester)
    assert list(items["tflite"]["extra"]["inputs"]) == [TFLITE_INPUT]
    errors = metrics_of(items["tflite"])
    assert errors[f"{TFLITE_OUTPUT} vs onnxruntime max_abs_error"]["values"][0] < 1e-5
    assert errors[f"{TFLITE_OUTPUT} vs onnxruntime cosine_similarity"]["values"][0] > 0.9999


A_SHAPE, B_SHAPE = [2, 3], [3]


def two_input_onnx(path: Path) -> None:
    """y = a * 2 + b: two inputs of different shapes."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes=[
            helper.make_node("Mul", ["a", "two"], ["doubled"]),
            helper.make_node("Add", ["doubled", "b"], ["y"]),
        ],
        name="two_inputs",
        inputs=[
            helper.make_tensor_value_info("a", TensorProto.FLOAT, A_SHAPE),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, B_SHAPE),
        ],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, A_SHAPE)],
        initializer=[numpy_helper.from_array(np.array([2.0], np.float32), "two")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def two_input_tflite(path: Path) -> None:
    """The same network as a converter might write it: inputs renamed and in the other order."""
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    import flatbuffers

    buffers = [schema.BufferT() for _ in range(6)]  # 0: empty; 1: the constant 2
    buffers[1].data = np.array([2.0], np.float32).tobytes()
    subgraph = schema.SubGraphT()
    subgraph.tensors = [
        make_mlp.tflite_tensor(schema, "serving_default_b:0", B_SHAPE, 2),
        make_mlp.tflite_tensor(schema, "serving_default_a:0", A_SHAPE, 3),
        make_mlp.tflite_tensor(schema, "two", [1], 1),
        make_mlp.tflite_tensor(schema, "doubled", A_SHAPE, 4),
        make_mlp.tflite_tensor(schema, TFLITE_OUTPUT, A_SHAPE, 5),
    ]
    subgraph.inputs, subgraph.outputs = [0, 1], [4]
    subgraph.operators = []
    for code_index, inputs, output in ((0, [1, 2], 3), (1, [3, 0], 4)):
        operator = schema.OperatorT()
        operator.opcodeIndex, operator.inputs, operator.outputs = code_index, inputs, [output]
        subgraph.operators.append(operator)
    codes = []
    for builtin in (schema.BuiltinOperator.MUL, schema.BuiltinOperator.ADD):
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = builtin
        code.version = 1
        codes.append(code)
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, codes, [subgraph]
    model.buffers = buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())


def test_reordered_inputs_pair_through_the_specs_match_field(pytester: Pytester) -> None:
    """Without ``match`` the note says which input differs and that ``match`` pairs them;
    with it, the LiteRT model draws the numbers ONNX Runtime draws for the same inputs."""
    pytest.importorskip("onnxruntime")
    two_input_onnx(pytester.path / "net.onnx")
    two_input_tflite(pytester.path / "net.tflite")
    unmatched = run_both(pytester, {}, {})
    unmatched.stdout.fnmatch_lines(
        [
            "*not compared: tflite's input 0 ('serving_default_b:0', [[]3[]] float32, random) "
            "differs from onnxruntime's ('a', [[]2, 3[]] float32, random): if a converter "
            'reordered the inputs, list them in the reference\'s order under "match"*'
        ]
    )
    match = {"inputs": ["serving_default_a:0", "serving_default_b:0"]}
    run_both(pytester, {}, {"match": match})
    errors = metrics_of(tflite_items(pytester)["tflite"])
    assert errors[f"{TFLITE_OUTPUT} vs onnxruntime max_abs_error"]["values"][0] < 1e-6


def test_a_match_that_does_not_name_the_models_inputs_is_a_located_error(
    pytester: Pytester,
) -> None:
    pytest.importorskip("onnxruntime")
    two_input_onnx(pytester.path / "net.onnx")
    two_input_tflite(pytester.path / "net.tflite")
    write_json(
        pytester.path / "tflite.json",
        spec("tflite", "graph", "net.tflite", match={"inputs": ["a", "b"]}),
    )
    result = pytester.runpytest("--aibench-spec=tflite.json")
    result.assert_outcomes(failed=1)
    assert (
        "tflite.json tests[0]: match.inputs ['a', 'b'] must name every input of the model once, "
        "in the reference framework's order; the model's inputs are "
        "['serving_default_b:0', 'serving_default_a:0']"
    ) in result.stdout.str()


def test_a_published_conversion_agrees_with_its_onnx_original_renamed_or_not(
    pytester: Pytester, basic_pitch: Path
) -> None:
    """basic-pitch's network as the wheel ships it (ONNX and LiteRT keep the SavedModel's
    tensor names), then with the ONNX file's input and outputs renamed as other converters
    name them: the agreement is measured either way."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("ai_edge_litert")
    (pytester.path / "net.tflite").write_bytes((basic_pitch / "nmp.tflite").read_bytes())
    model = onnx.load(basic_pitch / "nmp.onnx")
    renames = {model.graph.input[0].name: "input"}
    renames |= {output.name: f"output_{i}" for i, output in enumerate(model.graph.output)}
    for variant in ("as shipped", "renamed"):
        if variant == "renamed":
            for node in model.graph.node:
                node.input[:] = [renames.get(name, name) for name in node.input]
                node.output[:] = [renames.get(name, name) for name in node.output]
            for value in [*model.graph.input, *model.graph.output]:
                value.name = renames.get(value.name, value.name)
        onnx.save(model, pytester.path / "net.onnx")
        run_both(pytester, {"iter": 1}, {"iter": 1})
        items = tflite_items(pytester)
        errors = {
            key: metric["values"][0]
            for key, metric in metrics_of(items["tflite"]).items()
            if key.endswith("vs onnxruntime max_abs_error")
        }
        assert len(errors) == 3, (variant, errors)  # note, onset and contour, each compared
        assert max(errors.values()) < 1e-4, (variant, errors)
