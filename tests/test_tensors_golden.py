"""Tensor files, golden comparisons and ORT profiles: the pure parts."""

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_aibench.errors import RunnerError
from pytest_aibench.parsers.ort_profile import (
    after_warmup,
    mean_run_time,
    operators_from_profile,
)
from pytest_aibench.tensors import concrete_shape, numpy_dtype, read_tensor
from pytest_aibench.verdicts.golden import GoldenMismatch, compare
from pytest_aibench.verdicts.rules import Tolerance

ARRAY = np.arange(6, dtype=np.float32).reshape(2, 3) / 4


def test_npy_npz_and_onnx_tensor_files(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", ARRAY)
    np.savez(tmp_path / "many.npz", y=ARRAY, z=ARRAY * 2)
    np.savez(tmp_path / "one.npz", anything=ARRAY)
    assert np.array_equal(read_tensor(tmp_path / "a.npy"), ARRAY)
    assert np.array_equal(read_tensor(tmp_path / "many.npz", "z"), ARRAY * 2)
    assert np.array_equal(read_tensor(tmp_path / "one.npz", "y"), ARRAY)
    with pytest.raises(RunnerError, match="no array named 'w'"):
        read_tensor(tmp_path / "many.npz", "w")
    numpy_helper = pytest.importorskip("onnx.numpy_helper")
    (tmp_path / "t.pb").write_bytes(numpy_helper.from_array(ARRAY, "y").SerializeToString())
    assert np.array_equal(read_tensor(tmp_path / "t.pb"), ARRAY)


def test_faipep_text_forms_and_raw_binary(tmp_path: Path) -> None:
    (tmp_path / "lines.txt").write_text("0\n0.25\n0.5\n0.75\n1\n1.25\n")
    (tmp_path / "dims.txt").write_text("2,3\n0,0.25,0.5,0.75,1,1.25\n")
    ARRAY.astype("<f4").tofile(tmp_path / "x.bin")
    assert np.array_equal(read_tensor(tmp_path / "lines.txt", shape=[2, 3]), ARRAY)
    assert np.array_equal(read_tensor(tmp_path / "dims.txt"), ARRAY)
    got = read_tensor(tmp_path / "x.bin", dtype=np.dtype("float32"), shape=[2, 3])
    assert np.array_equal(got, ARRAY)
    with pytest.raises(RunnerError, match="raw binary needs the input's type and shape"):
        read_tensor(tmp_path / "x.bin")
    with pytest.raises(RunnerError, match="holds 6 values, which do not fit shape"):
        read_tensor(tmp_path / "lines.txt", shape=[4, 4])


def test_a_corrupted_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "y.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(RunnerError, match=r"cannot read a tensor from .*y\.npy"):
        read_tensor(tmp_path / "y.npy")


def test_dtypes_and_symbolic_shapes() -> None:
    assert numpy_dtype("tensor(float)") == np.float32
    assert numpy_dtype("int64") == np.int64
    assert concrete_shape(["batch", np.int32(64), -1, None, 3]) == [1, 64, 1, 1, 3]
    with pytest.raises(RunnerError, match="input type 'complex' is not supported"):
        numpy_dtype("complex")


def test_comparison_metrics_and_the_worst_element() -> None:
    golden = np.array([[1.0, 2.0], [3.0, 4.0]])
    actual = golden + np.array([[0.0, 0.001], [-0.01, 0.0]])
    result = compare("y", actual, golden, Tolerance(atol=1e-3, rtol=0))
    assert result.max_abs == pytest.approx(0.01)
    assert result.mean_abs == pytest.approx(0.011 / 4)
    assert result.rel_l2 == pytest.approx(math.sqrt(0.01**2 + 0.001**2) / math.sqrt(30))
    assert result.cosine == pytest.approx(1.0, abs=1e-5)
    assert result.worst_index == (1, 0) and result.actual == 2.99 and result.expected == 3.0
    assert not result.passed
    assert compare("y", actual, golden, Tolerance(atol=0, rtol=0.004)).passed
    message = result.explain(Tolerance(atol=1e-3, rtol=0))
    assert "output 'y'" in message and "[1, 0] is 2.99, golden 3.0" in message


def test_shapes_must_agree_unless_only_the_layout_differs() -> None:
    assert compare("y", np.ones(4), np.ones((2, 2)), Tolerance()).passed
    with pytest.raises(GoldenMismatch, match=r"shape \[3\], its golden output \[2, 2\]"):
        compare("y", np.ones(3), np.ones((2, 2)), Tolerance())


def test_tolerance_parsing() -> None:
    assert Tolerance.parse("atol=1e-6,rtol=1e-5") == Tolerance(1e-6, 1e-5)
    assert Tolerance.parse("rtol=0.1").atol == Tolerance().atol
    assert Tolerance.parse("").overriding({"atol": 0.5}) == Tolerance(0.5, Tolerance().rtol)
    with pytest.raises(ValueError, match="expected atol=X and/or rtol=Y"):
        Tolerance.parse("tol=3")


def test_ort_profile_nodes_become_operators() -> None:
    def node(name: str, op: str, dur: float) -> dict[str, Any]:
        return {
            "cat": "Node",
            "name": f"{name}_kernel_time",
            "dur": dur,
            "ph": "X",
            "args": {"op_name": op},
        }

    trace = [
        {"cat": "Session", "name": "model_run", "dur": 10.0},
        node("matmul0", "MatMul", 4),
        node("relu0", "Relu", 1),
        {"cat": "Node", "name": "matmul0_fence_before", "dur": 0.0},
        {"cat": "Session", "name": "model_run", "dur": 12.0},
        node("matmul0", "MatMul", 6),
        node("relu0", "Relu", 2),
    ]
    operators = {op.name: op for op in operators_from_profile({"traceEvents": trace}, runs=2)}
    assert operators["matmul0"].values == [4.0, 6.0] and operators["matmul0"].type == "MatMul"
    assert operators["relu0"].calls == 1
    assert mean_run_time(trace) == 11.0


def test_the_cold_first_run_is_left_out_of_a_profile() -> None:
    def node(ts: float, dur: float) -> dict[str, Any]:
        return {"cat": "Node", "name": "conv0_kernel_time", "ts": ts, "dur": dur}

    trace = [
        {"cat": "Session", "name": "model_run", "ts": 0.0, "dur": 9000.0},
        node(10.0, 8253.0),  # the cold run
        {"cat": "Session", "name": "model_run", "ts": 9500.0, "dur": 150.0},
        node(9510.0, 136.0),
        {"cat": "Session", "name": "model_run", "ts": 9700.0, "dur": 152.0},
        node(9710.0, 138.0),
    ]
    warm = after_warmup(trace, 1)
    (conv,) = operators_from_profile(warm, runs=2)
    assert conv.values == [136.0, 138.0] and mean_run_time(warm) == 151.0
    assert after_warmup(trace, 0) == trace
