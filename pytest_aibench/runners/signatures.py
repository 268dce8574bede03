"""What a model file says of its inputs: names, shapes and types, read by the framework that
runs it (ONNX Runtime, LiteRT). ``aibench spec MODEL`` writes a starter spec from them."""

from __future__ import annotations

from pathlib import Path

from ..errors import RunnerError, Unsupported
from ..spec.starter import ModelFile, ModelInput
from ..tensors import numpy_dtype


def read_model_file(path: Path) -> ModelFile:
    """The model's inputs, by its file's suffix (``.onnx``, ``.tflite``)."""
    if not path.is_file():
        raise RunnerError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return ModelFile("onnx", "onnxruntime", _onnx_inputs(path))
    if suffix == ".tflite":
        return ModelFile("tflite", "tflite", _litert_inputs(path))
    raise Unsupported(
        f"{path}: cannot read the inputs of a {suffix or 'suffix-less'} file (ONNX and LiteRT "
        "files only); a TorchScript or ExportedProgram spec declares its inputs itself: "
        '"inputs": {"x": {"shapes": [[1, 3, 224, 224]], "type": "float"}}'
    )


def _onnx_inputs(path: Path) -> list[ModelInput]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise Unsupported("reading an ONNX model needs pytest-aibench[onnx]") from None
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for unreadable models
        raise RunnerError(f"{path}: ONNX Runtime cannot load it: {exc}") from None
    return [
        ModelInput(i.name, list(i.shape), str(numpy_dtype(i.type))) for i in session.get_inputs()
    ]


def _litert_inputs(path: Path) -> list[ModelInput]:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise Unsupported("reading a LiteRT model needs pytest-aibench[tflite]") from None
    try:
        details = Interpreter(model_path=str(path)).get_input_details()
    except Exception as exc:  # LiteRT raises ValueError or RuntimeError for a bad file
        raise RunnerError(f"{path}: LiteRT cannot load it: {exc}") from None
    inputs = []
    for detail in details:
        signature = [int(d) for d in detail.get("shape_signature", detail["shape"])]
        shape = [None if d < 0 else d for d in signature]  # -1: a dynamic dimension
        inputs.append(ModelInput(detail["name"], shape, detail["dtype"].__name__))
    return inputs
