#!/usr/bin/env python3
"""Write mlp.onnx: MatMul(batch x 64 . 64 x 32) -> Add -> Relu, weights from a fixed seed.

The file is made by this script alone (no downloaded weights), byte for byte the same on every
run, so its MD5 in mlp.json stays true. Needs the ``onnx`` package:

    python specifications/models/onnx/mlp/make_mlp.py [OUTPUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 7
IN_FEATURES, OUT_FEATURES = 64, 32


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(SEED)
    weight = rng.standard_normal((IN_FEATURES, OUT_FEATURES)).astype(np.float32) / 8
    bias = rng.standard_normal(OUT_FEATURES).astype(np.float32) / 8
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
    return model


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("mlp.onnx")
    target.write_bytes(build().SerializeToString())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
