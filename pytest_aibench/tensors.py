"""Tensors in and out of benchmarks: dtypes, shapes, random inputs and the file formats people
keep inputs and golden outputs in.

Formats read: ``.npy``; ``.npz`` (the array of the same name, or the only one); ONNX
``TensorProto`` ``.pb`` (needs the ``onnx`` package); raw little-endian binary ``.bin``/``.raw``
as TFLite's benchmark_model takes (needs a dtype and a shape); and FAI-PEP's text forms: one number
per line, or a line of comma-separated dims followed by a line of comma-separated values (what
Caffe2's ``--text_output`` writes).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RunnerError

if TYPE_CHECKING:  # numpy is imported when a tensor is made, not with pytest
    import numpy as np

SEED = 20180222
_DTYPES = {
    "float": "float32",
    "float32": "float32",
    "float16": "float16",
    "double": "float64",
    "float64": "float64",
    "int8": "int8",
    "uint8": "uint8",
    "uint8_t": "uint8",
    "int16": "int16",
    "int32": "int32",
    "int": "int32",
    "int64": "int64",
    "long": "int64",
    "bool": "bool",
}


def numpy_dtype(name: str) -> np.dtype[Any]:
    """A dtype from a spec type (``float``), an ORT type (``tensor(float)``) or numpy's name."""
    import numpy as np

    bare = name.removeprefix("tensor(").removesuffix(")")
    if bare not in _DTYPES:
        raise RunnerError(f"input type {name!r} is not supported; use one of {sorted(_DTYPES)}")
    return np.dtype(_DTYPES[bare])


def concrete_shape(dims: Sequence[Any]) -> list[int]:
    """Symbolic or unknown dimensions (``"batch"``, ``None``, ``-1``, ``"variable"``) become 1."""
    return [_dimension(dim) for dim in dims]


def _dimension(dim: Any) -> int:
    try:
        value = operator.index(dim)  # ints, numpy ints; not strings, None or floats
    except TypeError:
        return 1
    return value if value >= 0 else 1


def random_tensor(shape: Sequence[int], dtype: np.dtype[Any], rng: np.random.Generator) -> Any:
    """Standard normal floats, integers in [0, 10), or booleans, by dtype."""
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    return rng.integers(0, 10, shape).astype(dtype)


def channels_first_shape(shape: Sequence[int], layout: str | None) -> list[int]:
    """A 4-D channels-last (``"NHWC"``) shape as its channels-first one; any other as it is."""
    if layout == "NHWC" and len(shape) == 4:
        return [shape[0], shape[3], shape[1], shape[2]]
    return list(shape)


def channels_first(array: Any, layout: str | None) -> Any:
    """A 4-D channels-last (``"NHWC"``) array in channels-first order; any other as it is."""
    return array.transpose(0, 3, 1, 2) if layout == "NHWC" and array.ndim == 4 else array


def channels_last(array: Any, layout: str | None) -> Any:
    """The inverse of ``channels_first``: a 4-D NCHW array for an ``"NHWC"`` model, contiguous."""
    import numpy as np

    if layout == "NHWC" and array.ndim == 4:
        return np.ascontiguousarray(array.transpose(0, 2, 3, 1))
    return array


def read_tensor(
    path: Path,
    name: str = "",
    dtype: np.dtype[Any] | None = None,
    shape: Sequence[int] | None = None,
) -> Any:
    """The array in ``path``, cast to ``dtype`` and shaped to ``shape`` when they are given."""
    import numpy as np

    try:
        data = _read(path, name, dtype, shape)
    except (OSError, ValueError, KeyError) as exc:
        raise RunnerError(f"cannot read a tensor from {path}: {exc}") from None
    array = np.asarray(data, dtype=dtype) if dtype is not None else np.asarray(data)
    if shape is None:
        return array
    try:
        return array.reshape(shape)
    except ValueError:
        raise RunnerError(
            f"{path} holds {array.size} values, which do not fit shape {list(shape)}"
        ) from None


RAW_SUFFIXES = (".bin", ".raw")  # bytes only: the reader is told the type and the shape


def _read(path: Path, name: str, dtype: np.dtype[Any] | None, shape: Sequence[int] | None) -> Any:
    import numpy as np

    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            key = name if name in keys else keys[0] if len(keys) == 1 else None
            if key is None:
                raise KeyError(f"no array named {name!r} among {keys}")
            return archive[key]
    if suffix == ".pb":
        return _read_tensor_proto(path)
    if suffix in RAW_SUFFIXES:
        if dtype is None or shape is None:
            raise ValueError("raw binary needs the input's type and shape")
        return np.fromfile(path, dtype=dtype.newbyteorder("<"))
    return _read_text(path)


def _read_tensor_proto(path: Path) -> Any:
    try:
        from onnx import TensorProto, numpy_helper
    except ImportError:
        raise RunnerError(
            f"{path} is an ONNX TensorProto; reading it needs onnx: "
            "pip install 'pytest-aibench[onnx]'"
        ) from None
    tensor = TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(tensor)


def _read_text(path: Path) -> Any:
    import numpy as np

    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) == 2 and "," in lines[1]:  # dims line, then values line
        dims = [int(float(dim)) for dim in lines[0].split(",") if dim.strip()]
        values = [float(value) for value in lines[1].split(",") if value.strip()]
        return np.asarray(values).reshape(dims)
    return np.asarray([float(line) for line in lines])
