#!/usr/bin/env python3
"""Make the MLP benchmark in four forms, and its golden data, from one set of weights.

The network is y = relu(x . W + b) with x: batch x 64, W: 64 x 32, b: 32, weights drawn from a
fixed seed. It is written, byte for byte the same on every run (so the MD5s in the specs stay
true), as:

    onnx/mlp/mlp.onnx          MatMul -> Add -> Relu (needs: onnx)
    tflite/mlp/mlp.tflite      FULLY_CONNECTED with fused RELU, built with LiteRT's flatbuffer
                               schema, no TensorFlow (needs: ai-edge-litert)
    pytorch/mlp/mlp.pt         TorchScript of Linear -> ReLU (needs: torch)
    pytorch/mlp/mlp.pt2        the same module through torch.export, batch dimension dynamic
                               (the TorchScript file alone is not byte-reproducible: its attribute
                               order and serialization id vary from run to run, so its spec has no
                               md5; the tests check that it computes what a fresh one does)
    executorch/mlp/mlp.pte     the module exported for ExecuTorch, batch 1, its portable kernels
                               (needs: executorch)
    executorch/mlp/mlp_xnnpack.pte
                               the same lowered to the XNNPACK delegate
    golden/mlp/x.npy, y.npy    an input and its output computed with numpy alone

    python specifications/models/make_mlp.py [onnx|tflite|torchscript|export|executorch|golden ...]
                                             [--out DIR]

No weights are downloaded; this script is the only source of these files.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

SEED = 7
IN_FEATURES, OUT_FEATURES = 64, 32
HERE = Path(__file__).resolve().parent


def weights() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    weight = (rng.standard_normal((IN_FEATURES, OUT_FEATURES)) / 8).astype(np.float32)
    bias = (rng.standard_normal(OUT_FEATURES) / 8).astype(np.float32)
    return weight, bias


def onnx_bytes() -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight, bias = weights()
    graph = helper.make_graph(
        nodes=[
            helper.make_node("MatMul", ["x", "weight"], ["hidden"], name="matmul0"),
            helper.make_node("Add", ["hidden", "bias"], ["biased"], name="add0"),
            helper.make_node("Relu", ["biased"], ["y"], name="relu0"),
        ],
        name="mlp",
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", IN_FEATURES])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", OUT_FEATURES])],
        initializer=[
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pytest-aibench"
    )
    model.ir_version = 9
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def chain_bytes(layers: int, width: int = 64) -> bytes:
    """An ONNX model of ``layers`` MatMul + Relu layers sharing one weight: work proportional
    to ``layers``, for A/B checks (51 layers do 2% more work than 50)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(3).normal(0, 1 / width**0.5, (width, width)).astype(np.float32)
    nodes, previous = [], "x"
    for index in range(layers):
        nodes.append(helper.make_node("MatMul", [previous, "weight"], [f"m{index}"]))
        nodes.append(helper.make_node("Relu", [f"m{index}"], [f"r{index}"]))
        previous = f"r{index}"
    nodes.append(helper.make_node("Identity", [previous], ["y"]))
    graph = helper.make_graph(
        nodes=nodes,
        name="chain",
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])],
        initializer=[numpy_helper.from_array(weight, "weight")],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pytest-aibench"
    )
    model.ir_version = 9
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def tflite_tensor(schema: Any, name: str, shape: list[int], buffer: int) -> Any:
    tensor = schema.TensorT()
    tensor.name, tensor.shape, tensor.buffer = name, shape, buffer
    tensor.type = schema.TensorType.FLOAT32
    return tensor


def tflite_bytes() -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    weight, bias = weights()
    buffers = [schema.BufferT() for _ in range(5)]  # 0: empty by convention; 1, 2: constants
    buffers[1].data = np.ascontiguousarray(weight.T).tobytes()  # TFLite keeps [out, in]
    buffers[2].data = bias.tobytes()
    subgraph = schema.SubGraphT()
    subgraph.name = "mlp"
    subgraph.tensors = [
        tflite_tensor(schema, "x", [1, IN_FEATURES], 3),
        tflite_tensor(schema, "weight", [OUT_FEATURES, IN_FEATURES], 1),
        tflite_tensor(schema, "bias", [OUT_FEATURES], 2),
        tflite_tensor(schema, "y", [1, OUT_FEATURES], 4),
    ]
    subgraph.tensors[0].shapeSignature = [-1, IN_FEATURES]
    subgraph.inputs, subgraph.outputs = [0], [3]
    options = schema.FullyConnectedOptionsT()
    options.fusedActivationFunction = schema.ActivationFunctionType.RELU
    operator = schema.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, [0, 1, 2], [3]
    operator.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    operator.builtinOptions = options
    subgraph.operators = [operator]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    model = schema.ModelT()
    model.version, model.description = 3, "pytest-aibench mlp"
    model.operatorCodes, model.subgraphs, model.buffers = [code], [subgraph], buffers
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def torch_module() -> Any:
    import torch

    weight, bias = weights()
    linear = torch.nn.Linear(IN_FEATURES, OUT_FEATURES)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight.T)))
        linear.bias.copy_(torch.from_numpy(bias))
    return torch.nn.Sequential(linear, torch.nn.ReLU()).eval()


def torchscript_bytes() -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(torch_module()), buffer)
    return _without_debug_info(buffer.getvalue())


def _without_debug_info(archive: bytes) -> bytes:
    """The TorchScript archive less its ``*.debug_pkl`` entries: optional source maps that name
    this machine's paths to torch's own sources."""
    source, target = zipfile.ZipFile(io.BytesIO(archive)), io.BytesIO()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as kept:
        for entry in source.infolist():
            if not entry.filename.endswith(".debug_pkl"):
                kept.writestr(entry, source.read(entry))
    return target.getvalue()


def export_bytes() -> bytes:
    import torch

    example = (torch.zeros(2, IN_FEATURES),)
    program = torch.export.export(
        torch_module(), example, dynamic_shapes=({0: torch.export.Dim.AUTO},)
    )
    for node in program.graph.nodes:  # stack traces name this machine's paths: leave them out
        node.meta.pop("stack_trace", None)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def executorch_bytes(delegate: str | None = None) -> bytes:
    """The module as an ExecuTorch program for batch 1, lowered to ``delegate`` (``xnnpack``)
    or run by the portable kernels."""
    import torch
    from executorch.exir import to_edge_transform_and_lower

    partitioners = []
    if delegate == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        partitioners.append(XnnpackPartitioner())
    exported = torch.export.export(torch_module(), (torch.zeros(1, IN_FEATURES),))
    lowered = to_edge_transform_and_lower(exported, partitioner=partitioners)
    return bytes(lowered.to_executorch().buffer)


def golden_arrays() -> dict[str, np.ndarray]:
    weight, bias = weights()
    x = np.random.default_rng(SEED + 1).standard_normal((1, IN_FEATURES)).astype(np.float32)
    y = np.maximum(x.astype(np.float64) @ weight + bias, 0).astype(np.float32)
    return {"x": x, "y": y}


def _save_array(path: Path, array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def outputs(kinds: list[str]) -> dict[str, bytes]:
    """Relative path -> file content, for the forms asked for."""
    made: dict[str, bytes] = {}
    if "onnx" in kinds:
        made["onnx/mlp/mlp.onnx"] = onnx_bytes()
    if "tflite" in kinds:
        made["tflite/mlp/mlp.tflite"] = tflite_bytes()
    if "torchscript" in kinds:
        made["pytorch/mlp/mlp.pt"] = torchscript_bytes()
    if "export" in kinds:
        made["pytorch/mlp/mlp.pt2"] = export_bytes()
    if "executorch" in kinds:
        made["executorch/mlp/mlp.pte"] = executorch_bytes()
        made["executorch/mlp/mlp_xnnpack.pte"] = executorch_bytes("xnnpack")
    if "golden" in kinds:
        for name, array in golden_arrays().items():
            made[f"golden/mlp/{name}.npy"] = _save_array(Path(name), array)
    return made


def main() -> None:
    kinds = ["onnx", "tflite", "torchscript", "export", "executorch", "golden"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", help=f"any of {', '.join(kinds)} (default: all)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder of the models tree")
    options = parser.parse_args()
    unknown = set(options.kinds) - set(kinds)
    if unknown:
        parser.error(f"unknown kinds {sorted(unknown)}; choose from {kinds}")
    for relative, content in outputs(options.kinds or kinds).items():
        target = options.out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        print(f"wrote {target} ({len(content)} bytes)")


if __name__ == "__main__":
    main()
