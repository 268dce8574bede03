"""In-process runners (ONNX Runtime, LiteRT, PyTorch) on the repository's MLP: timings,
operators, golden outputs, and the failures a user must understand."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest import Pytester

from pytest_aibench.records import ItemRecord

from .helpers import case_of, item_record, metrics_of, write_json, write_program, written_run

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "specifications/models"
sys.path.insert(0, str(MODELS))
import make_mlp  # noqa: E402

sys.path.pop(0)

GOLDEN = {
    "input_files": {"x": {"filename": "x.npy", "location": "x.npy"}},
    "golden_files": {"y": {"filename": "y.npy", "location": "y.npy"}},
}


def items_by_id(pytester: Pytester) -> dict[str, ItemRecord]:
    return {case_of(item)["identifier"]: item for item in written_run(pytester.path)["items"]}


def write_golden(pytester: Pytester, y_shift: float = 0.0) -> None:
    arrays = make_mlp.golden_arrays()
    np.save(pytester.path / "x.npy", arrays["x"])
    np.save(pytester.path / "y.npy", arrays["y"] + np.float32(y_shift))


def spec(fmt: str, key: str, filename: str, *tests: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": {
            "name": "mlp",
            "format": fmt,
            "files": {key: {"filename": filename, "location": filename}},
        },
        "tests": list(tests),
    }


def onnx_model(pytester: Pytester) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    (pytester.path / "mlp.onnx").write_bytes(make_mlp.onnx_bytes())


def assert_cold_start(item: ItemRecord) -> None:
    """Load, first inference and memory: one sample each, beside the warm loop's samples."""
    metrics = metrics_of(item)
    for key, unit in (
        ("NET load", "us"),
        ("NET first_inference", "us"),
        ("NET peak_memory", "MiB"),
        ("NET memory_increment", "MiB"),
    ):
        assert metrics[key]["unit"] == unit and len(metrics[key]["values"]) == 1, key
    peak, increment = (metrics[k]["values"][0] for k in ("NET peak_memory", "NET memory_increment"))
    assert metrics["NET load"]["values"][0] > 0 and 0 <= increment < peak


def test_a_peak_is_the_items_own_not_the_processes(tmp_path: Path) -> None:
    """The kernel's high-water mark is reset when an item starts: a large buffer an earlier
    item held (and freed) is not the next item's peak."""
    from pytest_aibench.runners.memory import PeakWatch

    first = PeakWatch.start()
    if first is None:
        pytest.skip("this kernel does not let a process reset its peak (/proc/self/clear_refs)")
    buffer = b"\x01" * (200 * 1024 * 1024)  # every byte written: resident, not only reserved
    peak_with_buffer = first.read()
    del buffer
    second = PeakWatch.start()
    assert peak_with_buffer is not None and second is not None
    assert peak_with_buffer[1] >= 190  # MiB the first item added
    small = second.read()
    assert small is not None and small[1] < 50 and small[0] < peak_with_buffer[0] - 100


def test_onnxruntime_timings_operators_settings_and_golden(pytester: Pytester) -> None:
    onnx_model(pytester)
    write_golden(pytester)
    write_json(
        pytester.path / "mlp.json",
        spec(
            "onnx",
            "model",
            "mlp.onnx",
            {"identifier": "golden", "metric": "delay", "iter": 25, **GOLDEN},
            {
                "identifier": "b{ID}",
                "metric": "delay",
                "warmup": 2,
                "iter": 25,
                "inputs": {"x": {"shapes": [[1, 64], [8, 64]], "type": "float"}},
            },
            {
                "identifier": "unfused",
                "metric": "delay",
                "iter": 10,
                "onnxruntime": {"graph_optimization_level": "disable", "intra_op_num_threads": 1},
            },
        ),
    )
    result = pytester.runpytest(
        "--aibench-spec=mlp.json", "--aibench-json=run.json", "-m", "onnx and delay"
    )
    result.assert_outcomes(passed=4)
    items = items_by_id(pytester)
    assert items["b2"]["extra"]["inputs"] == {
        "x": {"shape": [8, 64], "type": "float32", "source": "random"}
    }
    assert items["unfused"]["extra"]["inputs"]["x"]["shape"] == [1, 64]  # symbolic batch -> 1
    assert items["unfused"]["extra"]["onnxruntime"]["graph_optimization_level"] == "disable"
    assert len(metrics_of(items["b1"])["NET latency"]["values"]) == 25
    assert_cold_start(items["b1"])
    unfused = {op["name"]: op for op in items["unfused"]["operators"]}
    assert {name: op["type"] for name, op in unfused.items()} == {
        "matmul0": "MatMul",
        "add0": "Add",
        "relu0": "Relu",
    }
    assert all(len(op["values"]) == 10 and 0 < (op["share"] or 0) < 1 for op in unfused.values())
    assert [op["type"] for op in items["golden"]["operators"]] == ["FusedGemm"]
    errors = metrics_of(items["golden"])
    assert errors["y max_abs_error"]["values"][0] < 1e-5
    assert errors["y cosine_similarity"]["values"][0] == pytest.approx(1.0)
    result.stdout.fnmatch_lines(["*top 5 operators*", "*mlp[[]unfused-host[]]*matmul0*MatMul*"])


def test_golden_mismatch_fails_with_output_index_and_values(pytester: Pytester) -> None:
    onnx_model(pytester)
    write_golden(pytester, y_shift=0.5)
    write_json(
        pytester.path / "mlp.json",
        spec(
            "onnx",
            "model",
            "mlp.onnx",
            {
                "identifier": "golden",
                "metric": "delay",
                "iter": 3,
                **GOLDEN,
                "tolerance": {"atol": 1e-3, "rtol": 0},
            },
        ),
    )
    result = pytester.runpytest("--aibench-spec=mlp.json", "--aibench-json=run.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*output 'y' differs from its golden output beyond atol=0.001 "
            "rtol=0: worst element [[]0, *[]] is *, golden *"
        ]
    )
    errors = metrics_of(written_run(pytester.path)["items"][0])
    assert errors["y max_abs_error"]["values"][0] == pytest.approx(0.5, abs=1e-5)


def test_error_tolerance_option_applies_where_the_spec_gives_none(pytester: Pytester) -> None:
    onnx_model(pytester)
    write_golden(pytester, y_shift=0.01)
    write_json(
        pytester.path / "mlp.json",
        spec(
            "onnx", "model", "mlp.onnx", {"identifier": "g", "metric": "delay", "iter": 3, **GOLDEN}
        ),
    )
    pytester.runpytest("--aibench-spec=mlp.json").assert_outcomes(failed=1)
    pytester.runpytest(
        "--aibench-spec=mlp.json", "--aibench-error-tolerance=atol=0.02"
    ).assert_outcomes(passed=1)


def test_corrupted_golden_and_unknown_operator_fail_clearly_and_the_run_goes_on(
    pytester: Pytester,
) -> None:
    onnx = pytest.importorskip("onnx")
    onnx_model(pytester)
    write_golden(pytester)
    (pytester.path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00 not an array")
    node = onnx.helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery")
    graph = onnx.helper.make_graph(
        [node],
        "odd",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    (pytester.path / "odd.onnx").write_bytes(model.SerializeToString())
    bad_golden = {**GOLDEN, "golden_files": {"y": {"filename": "bad.npy", "location": "bad.npy"}}}
    write_json(
        pytester.path / "a.json",
        spec(
            "onnx",
            "model",
            "mlp.onnx",
            {"identifier": "corrupt", "metric": "delay", "iter": 3, **bad_golden},
            {"identifier": "fine", "metric": "delay", "iter": 3, **GOLDEN},
        ),
    )
    write_json(
        pytester.path / "b.json",
        spec("onnx", "model", "odd.onnx", {"identifier": "odd", "metric": "delay", "iter": 3}),
    )
    result = pytester.runpytest("--aibench-spec=a.json", "--aibench-spec=b.json")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "*cannot read a tensor from */bad.npy*",
            "*onnxruntime cannot load */odd.onnx: *NoSuchOp*",
        ]
    )


def test_a_backend_that_is_no_execution_provider_skips_onnx_runtime(pytester: Pytester) -> None:
    """gpu is benchmark_model's delegate: ONNX Runtime items skip, naming the providers."""
    onnx_model(pytester)
    write_json(
        pytester.path / "mlp.json",
        spec("onnx", "model", "mlp.onnx", {"identifier": "g", "metric": "delay", "iter": 3}),
    )
    result = pytester.runpytest("--aibench-spec=mlp.json", "--aibench-backend=gpu", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*--aibench-backend gpu is no ONNX Runtime execution provider (it knows cpu, cuda,*"]
    )


def test_missing_cuda_provider_skips_with_the_reason(pytester: Pytester) -> None:
    onnx_model(pytester)
    write_json(
        pytester.path / "mlp.json",
        spec("onnx", "model", "mlp.onnx", {"identifier": "g", "metric": "delay", "iter": 3}),
    )
    result = pytester.runpytest("--aibench-spec=mlp.json", "--aibench-backend=cuda", "-rs")
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(
            ["*execution provider CUDAExecutionProvider is not in this onnxruntime build*"]
        )


def tflite_model(pytester: Pytester, custom_op: str | None = None) -> None:
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    content = make_mlp.tflite_bytes()
    if custom_op:
        import flatbuffers

        model = schema.ModelT.InitFromPackedBuf(content, 0)
        code = model.operatorCodes[0]
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = custom_op
        builder = flatbuffers.Builder(4096)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        content = bytes(builder.Output())
    (pytester.path / "mlp.tflite").write_bytes(content)


def test_litert_in_process_golden_threads_and_xnnpack(pytester: Pytester) -> None:
    tflite_model(pytester)
    write_golden(pytester)
    write_json(
        pytester.path / "mlp.json",
        spec(
            "tflite",
            "graph",
            "mlp.tflite",
            {"identifier": "golden", "metric": "delay", "iter": 20, **GOLDEN},
            {
                "identifier": "b{ID}",
                "metric": "delay",
                "iter": 20,
                "tflite": {"num_threads": 1, "xnnpack": False},
                "inputs": {"x": {"shapes": [[4, 64]], "type": "float"}},
            },
        ),
    )
    result = pytester.runpytest("--aibench-spec=mlp.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=2)
    items = items_by_id(pytester)
    assert metrics_of(items["golden"])["y max_abs_error"]["values"][0] < 1e-5
    assert items["b1"]["extra"]["litert"]["xnnpack"] is False
    assert items["b1"]["extra"]["inputs"]["x"]["shape"] == [4, 64]
    assert len(metrics_of(items["b1"])["NET latency"]["values"]) == 20
    assert_cold_start(items["b1"])


def test_litert_unknown_operator_fails_naming_the_model(pytester: Pytester) -> None:
    tflite_model(pytester, custom_op="NoSuchCustomOp")
    write_json(
        pytester.path / "mlp.json",
        spec("tflite", "graph", "mlp.tflite", {"identifier": "x", "metric": "delay", "iter": 2}),
    )
    result = pytester.runpytest("--aibench-spec=mlp.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*LiteRT cannot * */mlp.tflite: *NoSuchCustomOp*"])


@pytest.mark.parametrize(("filename", "form"), [("mlp.pt", "torchscript"), ("mlp.pt2", "export")])
def test_pytorch_in_process_operators_and_golden(
    pytester: Pytester, filename: str, form: str
) -> None:
    pytest.importorskip("torch")
    # The committed models: making them here would import parts of torch that pytester drops
    # from sys.modules afterwards, and torch cannot register its operator libraries twice.
    (pytester.path / filename).write_bytes((MODELS / "pytorch/mlp" / filename).read_bytes())
    write_golden(pytester)
    inputs = {"x": {"shapes": [[1, 64]], "type": "float"}}
    write_json(
        pytester.path / "mlp.json",
        spec(
            "pytorch",
            "model",
            filename,
            {
                "identifier": "golden",
                "metric": "delay",
                "iter": 2,  # 2 profiled runs: one more (the warmup) would make 2 calls a run
                "inputs": inputs,
                **GOLDEN,
                "pytorch": {"num_threads": 1},
            },
        ),
    )
    # In a subprocess: torch registers operator libraries once per process, and pytester's
    # in-process runs would import parts of it again.
    result = pytester.runpytest_subprocess(
        "--aibench-spec=mlp.json", "--aibench-json=run.json", "-W", "error::DeprecationWarning"
    )
    result.assert_outcomes(passed=1)
    item = items_by_id(pytester)["golden"]
    assert item["extra"]["torch"]["format"] == form
    assert item["extra"]["torch"]["num_threads"] == 1
    assert metrics_of(item)["y max_abs_error"]["values"][0] < 1e-5
    operators = {op["name"]: op for op in item["operators"]}
    assert operators["aten::addmm"]["calls"] == 1  # the profiler's warmup step left out
    assert not [name for name in operators if name.startswith("ProfilerStep")]  # not an operator
    assert_cold_start(item)
    assert item["extra"]["backend"] == {"name": "cpu", "onednn": True}


def test_pytorch_needs_declared_inputs(pytester: Pytester) -> None:
    pytest.importorskip("torch")
    (pytester.path / "mlp.pt").write_bytes((MODELS / "pytorch/mlp/mlp.pt").read_bytes())
    write_json(
        pytester.path / "mlp.json",
        spec("pytorch", "model", "mlp.pt", {"identifier": "x", "metric": "delay", "iter": 2}),
    )
    result = pytester.runpytest("--aibench-spec=mlp.json")
    result.stdout.fnmatch_lines(["*does not declare its inputs; give the test 'inputs'*"])


def test_repository_models_are_what_the_script_makes(tmp_path: Path) -> None:
    for module in ("onnx", "ai_edge_litert", "torch", "executorch"):
        pytest.importorskip(module)
    done = subprocess.run(
        [sys.executable, str(MODELS / "make_mlp.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for relative in (
        "onnx/mlp/mlp.onnx",
        "tflite/mlp/mlp.tflite",
        "pytorch/mlp/mlp.pt2",
        "executorch/mlp/mlp.pte",
        "executorch/mlp/mlp_xnnpack.pte",
        "golden/mlp/x.npy",
        "golden/mlp/y.npy",
    ):
        assert (tmp_path / relative).read_bytes() == (MODELS / relative).read_bytes(), relative
    specs = {
        "onnx/mlp/mlp.json": "onnx/mlp/mlp.onnx",
        "tflite/mlp/mlp.json": "tflite/mlp/mlp.tflite",
        "pytorch/mlp/mlp_export.json": "pytorch/mlp/mlp.pt2",
        "executorch/mlp/mlp.json": "executorch/mlp/mlp.pte",
        "executorch/mlp/mlp_xnnpack.json": "executorch/mlp/mlp_xnnpack.pte",
    }
    for spec_file, model in specs.items():
        files = json.loads((MODELS / spec_file).read_text())["model"]["files"]
        md5 = hashlib.md5((MODELS / model).read_bytes()).hexdigest()
        assert next(iter(files.values()))["md5"] == md5, spec_file
    # A TorchScript archive carries a random id: the committed one must compute what a fresh one
    # does, checked in a fresh process for the reason given above.
    check = (
        "import sys, torch, numpy as np; x = torch.from_numpy(np.load(sys.argv[3]));"
        "a, b = (torch.jit.load(p) for p in sys.argv[1:3]); assert torch.equal(a(x), b(x))"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            "-c",
            check,
            str(MODELS / "pytorch/mlp/mlp.pt"),
            str(tmp_path / "pytorch/mlp/mlp.pt"),
            str(MODELS / "golden/mlp/x.npy"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_in_process_items_under_xdist_reach_the_run_file(pytester: Pytester) -> None:
    """Framework details (torch's version object, numpy scalars) must cross xdist's wire."""
    for module in ("onnxruntime", "torch", "xdist"):
        pytest.importorskip(module)
    (pytester.path / "mlp.onnx").write_bytes((MODELS / "onnx/mlp/mlp.onnx").read_bytes())
    (pytester.path / "mlp.pt").write_bytes((MODELS / "pytorch/mlp/mlp.pt").read_bytes())
    write_golden(pytester)
    inputs = {"x": {"shapes": [[1, 64]], "type": "float"}}
    onnx_spec = spec("onnx", "model", "mlp.onnx", {"identifier": "o", "metric": "delay", "iter": 5})
    torch_spec = spec(
        "pytorch",
        "model",
        "mlp.pt",
        {"identifier": "t", "metric": "delay", "iter": 5, "inputs": inputs},
    )
    for name, data in (("onnx", onnx_spec), ("torch", torch_spec)):
        model = data["model"]["files"]["model"]
        model["location"] = "../" + model["location"]
        write_json(pytester.path / f"specs/{name}.json", data)
    result = pytester.runpytest_subprocess(
        "-n", "2", "--aibench-spec=specs", "--aibench-json=run.json", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    items = items_by_id(pytester)
    assert set(items) == {"o", "t"}
    assert isinstance(items["t"]["extra"]["torch"]["version"], str)
    assert items["t"]["operators"] and items["o"]["operators"]


def chain_model(path: Path, layers: int) -> None:
    """The repository's chain of ``layers`` MatMuls, written to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_mlp.chain_bytes(layers))


def ab_onnx_project(pytester: Pytester, control_layers: int, treatment_layers: int) -> Path:
    """This checkout's chain model and a base checkout's, at the same relative path."""
    pytest.importorskip("onnxruntime")
    base = pytester.path / "base"
    for root, layers in ((pytester.path, treatment_layers), (base, control_layers)):
        chain_model(root / "models/chain.onnx", layers)
    spec = {
        "model": {
            "name": "chain",
            "format": "onnx",
            "framework": "onnxruntime",
            "files": {"model": {"filename": "chain.onnx", "location": "models/chain.onnx"}},
        },
        "tests": [{"identifier": "ab", "metric": "delay", "iter": 50, "warmup": 2}],
    }
    write_json(pytester.path / "chain.json", spec)
    return base


def test_in_process_ab_against_a_control_root_passes_when_nothing_changed(
    pytester: Pytester,
) -> None:
    base = ab_onnx_project(pytester, 20, 20)
    result = pytester.runpytest(
        "--aibench-spec=chain.json",
        f"--aibench-ab-control-root={base}",
        "--aibench-ab-min-effect=50%",  # the plumbing; tests/test_sequential.py holds the rule
        "--aibench-json=run.json",
    )
    result.assert_outcomes(passed=1)
    item = written_run(pytester.path)["items"][0]
    verdict = item["verdicts"][0]
    assert item["comparison"] == "ab" and verdict["status"] == "unchanged"
    assert verdict["n_control"] == item["extra"]["ab"]["blocks"] >= 10
    assert item["extra"]["onnxruntime"]["version"]  # measured in the worker, recorded here
    # ONNX Runtime's default threads: both sides on every CPU, one thread each, not spinning
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    sides = item["extra"]["ab"]["sides"]
    assert sides["control"] == sides["treatment"]
    if cpus:
        assert sides["treatment"]["cpus"] == cpus and sides["treatment"]["threads"] == len(cpus)
        assert item["extra"]["onnxruntime"]["intra_op_num_threads"] == len(cpus)
        if len(cpus) > 1:  # pool threads placed alike in both sessions, 1-based
            places = ";".join(str(cpu + 1) for cpu in cpus[1:])
            assert item["extra"]["onnxruntime"]["intra_op_thread_affinities"] == places
    assert item["extra"]["onnxruntime"]["intra_op_spinning"] is False


def test_in_process_ab_fails_a_heavier_model_under_a_control_python(pytester: Pytester) -> None:
    base = ab_onnx_project(pytester, 20, 30)  # the treatment does 1.5 times the work
    result = pytester.runpytest(
        "--aibench-spec=chain.json",
        f"--aibench-ab-control-root={base}",
        f"--aibench-ab-control-python={sys.executable}",  # its own worker process
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"aibench: A/B regression against the files under {base} with {sys.executable}, *",
            "NET latency p50 regressed: * us (+*%, *), * paired blocks; +*% or more caught 9 *",
        ]
    )


def test_a_control_root_without_the_model_is_a_located_error(pytester: Pytester) -> None:
    base = ab_onnx_project(pytester, 20, 20)
    (base / "models/chain.onnx").unlink()
    result = pytester.runpytest("--aibench-spec=chain.json", f"--aibench-ab-control-root={base}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*--aibench-ab-control-root: the control has no models/chain.onnx (expected *)*"]
    )


class LoggedSide:
    """An A/B side that logs what it runs: whole blocks, or (once ``ready``) timed turns."""

    def __init__(self, name: str, log: list[tuple[str, int]], ready: bool) -> None:
        self.name, self.log, self.ready = name, log, ready

    def run_block(self, recorder: Any, iterations: int) -> None:
        self.log.append((self.name, iterations))
        recorder.record("NET", "latency", "us", [1.0] * iterations)

    def timer(self) -> Any:
        def time_turn(iterations: int, warmup: int) -> list[float]:
            self.log.append((self.name, iterations))
            return [1.0] * iterations

        return time_turn if self.ready else None

    def close(self) -> None:
        pass


@pytest.mark.parametrize("ready", [True, False])
def test_worker_sides_take_turns_of_a_few_calls_within_each_block(ready: bool) -> None:
    import random

    from pytest_aibench.ab.blocks import TURN, _block

    log: list[tuple[str, int]] = []
    sides: Any = {name: LoggedSide(name, log, ready) for name in ("control", "treatment")}
    block = _block(sides, 4 * TURN + 2, warmup=1, shuffler=random.Random(0))
    if not ready:  # whole runs, one after the other
        assert sorted(log) == [("control", 4 * TURN + 2), ("treatment", 4 * TURN + 2)]
        return
    assert len(log) == 10  # five turns each: four of TURN calls, one of the 2 left
    rounds = [{name for name, _ in log[i : i + 2]} for i in range(0, 10, 2)]
    assert all(names == {"control", "treatment"} for names in rounds)  # both in every round
    assert [calls for name, calls in log if name == "control"] == [TURN] * 4 + [2]
    for recorder in block.values():
        assert len(recorder.results()["metrics"][0]["values"]) == 4 * TURN + 2


def test_a_suspected_regression_is_rerun_with_fresh_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from pytest_aibench.ab import blocks
    from pytest_aibench.ab.cpus import ONE_THREAD, CpuShare
    from pytest_aibench.recorder import Recorder
    from pytest_aibench.verdicts.statistics import Verdict

    slower = Verdict.of(
        key="NET latency", status="regressed", method="paired blocks", statistic="p50",
        unit="us", control=100.0, treatment=110.0, low=1.05, high=1.15, p_value=None,
        n_control=10, n_treatment=10, min_effect=0.02,
    )  # fmt: skip
    events: list[str] = []

    def fake_interleave(*args: Any) -> blocks.ABRun:
        events.append("run")
        return blocks.ABRun(Recorder(1, 0), Recorder(1, 0), [slower], 10, 1.0)

    monkeypatch.setattr(blocks, "interleave", fake_interleave)
    remote = CpuShare(None, 1, ONE_THREAD)
    sides: Any = SimpleNamespace(
        close=lambda: events.append("fresh workers"), label="base", share=remote
    )
    settings = SimpleNamespace(verify=2, seed=0, fail_inconclusive=False)
    item: Any = SimpleNamespace(settings=settings, device=SimpleNamespace(local=False))
    recorder = Recorder(1, 0)
    blocks.run_ab(item, sides, recorder, 50)
    assert events == ["run", "fresh workers", "run", "fresh workers", "run"]
    assert recorder.failures[0].startswith("aibench: A/B regression against base, held in 3 of 3")


class NoisyWorkerSide:
    """A worker-like side whose blocks read 100 us, the treatment's off by a seeded +-3%, so
    that the rule needs several looks; logs its whole runs, its timed turns and restarts."""

    def __init__(self, name: str, log: list[str], noise: Any) -> None:
        self.name, self.log, self.noise, self.started = name, log, noise, False

    def _values(self, iterations: int, how: str) -> list[float]:
        self.log.append(f"{self.name} {how}")
        value = 100.0 * (1 + self.noise.gauss(0, 0.03)) if self.name == "treatment" else 100.0
        return [value] * iterations

    def run_block(self, recorder: Any, iterations: int) -> None:
        self.started = True
        recorder.record("NET", "latency", "us", self._values(iterations, "whole"))

    def timer(self) -> Any:
        return (lambda n, warmup: self._values(n, "turn")) if self.started else None

    def load(self) -> None:
        if not self.started:
            self._values(1, "load")
            self.started = True

    def close(self) -> None:
        self.started = False
        self.log.append(f"{self.name} closed")


def test_worker_sides_restart_early_and_at_every_undecided_look(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import random
    from types import SimpleNamespace

    from pytest_aibench.ab import blocks
    from pytest_aibench.ab.cpus import ONE_THREAD, CpuShare
    from pytest_aibench.ab.sides import Sides
    from pytest_aibench.verdicts.sequential import look_points

    log: list[str] = []
    noise = random.Random(7)
    control, treatment = (NoisyWorkerSide(name, log, noise) for name in ("control", "treatment"))
    original_block = blocks._block

    def counted_block(*args: Any) -> Any:
        log.append("block")
        return original_block(*args)

    monkeypatch.setattr(blocks, "_block", counted_block)
    settings = SimpleNamespace(
        ab_blocks=5,
        ab_max_time=1e9,
        ab_time_limit=1e9,
        alpha=0.01,
        cooldown=0,
        fail_on=(),
        ab_min_effect=0.02,
    )
    item: Any = SimpleNamespace(settings=settings, counts=lambda: (50, 0))
    sides = Sides(control, treatment, "base", CpuShare(None, 1, ONE_THREAD))
    ab = blocks.interleave(item, sides, 50, seed=0)
    assert ab.verdicts[0].status == "unchanged" and ab.blocks > 10
    restarted_after = [log[:i].count("block") for i, e in enumerate(log) if e == "control closed"]
    undecided_looks = [n for n in look_points() if n < ab.blocks]
    assert restarted_after == sorted({*blocks.EARLY_EPOCHS, *undecided_looks})
    # Only the first block runs whole: after a restart both sides load before the next block,
    # which they time in turns.
    assert [e for e in log if e.endswith("whole")] == ["control whole", "treatment whole"]
    assert log.count("control load") == log.count("treatment load") == len(restarted_after)


def test_one_framework_is_the_golden_of_the_others(pytester: Pytester) -> None:
    """--aibench-reference tflite: ONNX Runtime's outputs of the same network and inputs are
    compared with LiteRT's (no golden files at all), under xdist as the workers run them; the
    kept outputs are removed."""
    pytest.importorskip("xdist")
    onnx_model(pytester)
    tflite_model(pytester)
    same = {"metric": "delay", "iter": 5, "inputs": {"x": {"shapes": [[2, 64]], "type": "float"}}}
    for fmt, key, filename in (("onnx", "model", "mlp.onnx"), ("tflite", "graph", "mlp.tflite")):
        write_json(
            pytester.path / f"{fmt}.json", spec(fmt, key, filename, {"identifier": "x", **same})
        )
    result = pytester.runpytest_subprocess(
        "--aibench-spec=onnx.json",
        "--aibench-spec=tflite.json",
        "--aibench-reference=tflite",
        "--aibench-json=run.json",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*aibench: agreement with tflite (max abs error of the outputs)*",
            "network*device*onnxruntime*tflite*note",
            "mlp[[]x[]]*0.00*",
        ]
    )
    items = {case_of(item)["framework"]: item for item in written_run(pytester.path)["items"]}
    onnx_errors = metrics_of(items["onnxruntime"])
    assert onnx_errors["y vs tflite max_abs_error"]["values"][0] < 1e-5
    assert onnx_errors["y vs tflite cosine_similarity"]["values"][0] == pytest.approx(1.0)
    assert not any(key.endswith("vs tflite max_abs_error") for key in metrics_of(items["tflite"]))
    assert items["onnxruntime"]["extra"]["outputs"] == {"names": ["y"]}
    assert not list((pytester.path / ".aibench" / "outputs").glob("*.npz"))


def test_agreement_marks_what_disagrees_and_what_cannot_be_compared(tmp_path: Path) -> None:
    from pytest_aibench.kept_outputs import discard, keep, read
    from pytest_aibench.verdicts.agreement import agree
    from pytest_aibench.verdicts.rules import Tolerance

    y = np.linspace(-1, 1, 32, dtype=np.float32).reshape(1, 32)

    def ran(framework: str, output: Any, identifier: str = "x", shape: int = 2) -> ItemRecord:
        item = item_record(
            f"{framework}.json::mlp[{identifier}-host]",
            case={"model": "mlp", "identifier": identifier, "framework": framework},
            device={"hash": "vm"},
        )
        item["extra"] = {
            "inputs": {"x": {"shape": [shape, 64]}},
            "outputs": keep(tmp_path, {"out": output}),
        }
        return item

    items = [
        ran("tflite", y),
        ran("onnxruntime", y + 1e-7),
        ran("pytorch", y + 0.5),  # a wrong conversion
        ran("tflite", y, "other"),
        ran("onnxruntime", y, "other", shape=4),  # other inputs: not comparable
    ]
    rows = {row.key[1]: row for row in agree(items, "tflite", Tolerance(), read)}
    discard(items)
    assert rows["x"].beyond == {"pytorch"} and rows["x"].errors["pytorch"] == pytest.approx(0.5)
    assert (rows["x"].errors["onnxruntime"] or 1.0) < 1e-6 and rows["x"].errors["tflite"] == 0.0
    assert rows["other"].errors["onnxruntime"] is None
    assert rows["other"].note == (
        "not compared: onnxruntime's input 0 ('x', [4, 64] , random) differs from tflite's "
        "('x', [2, 64] , random): give both the same shapes (the test's \"inputs\") or the "
        "same input file"
    )
    assert metrics_of(items[2])["out vs tflite max_abs_error"]["values"] == [pytest.approx(0.5)]
    assert not list(tmp_path.glob("*.npz"))  # every kept file removed


def test_a_specs_reference_field_makes_the_golden_of_its_network(pytester: Pytester) -> None:
    """``"reference": "tflite"`` in the ONNX spec's test, no option: LiteRT's outputs (its spec
    names nothing) are kept and are the golden of ONNX Runtime's for that network only."""
    onnx_model(pytester)
    tflite_model(pytester)
    inputs = {"inputs": {"x": {"shapes": [[2, 64]], "type": "float"}}}
    onnx_tests = [
        {"identifier": "x", "metric": "delay", "iter": 3, "reference": "tflite", **inputs},
        {"identifier": "alone", "metric": "delay", "iter": 3, **inputs},
    ]
    write_json(pytester.path / "onnx.json", spec("onnx", "model", "mlp.onnx", *onnx_tests))
    tflite_test = {"identifier": "x", "metric": "delay", "iter": 3, **inputs}
    write_json(pytester.path / "tflite.json", spec("tflite", "graph", "mlp.tflite", tflite_test))
    result = pytester.runpytest(
        "--aibench-spec=onnx.json", "--aibench-spec=tflite.json", "--aibench-json=run.json"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*aibench: agreement with tflite (max abs error of the outputs)*",
            "network*device*reference*onnxruntime*tflite*note",
            "mlp[[]x[]]*tflite*0.00*",
        ]
    )
    items = {item["nodeid"]: item for item in written_run(pytester.path)["items"]}
    onnx_x, onnx_alone = items["onnx.json::mlp[x-host]"], items["onnx.json::mlp[alone-host]"]
    assert case_of(onnx_x)["reference"] == "tflite"
    assert metrics_of(onnx_x)["y vs tflite max_abs_error"]["values"][0] < 1e-5
    assert not any(" vs " in key for key in metrics_of(onnx_alone))
    assert "outputs" not in onnx_alone["extra"]  # no reference for it: nothing kept


def test_two_specs_naming_two_references_for_one_network_is_an_error(
    pytester: Pytester,
) -> None:
    onnx_model(pytester)
    tflite_model(pytester)
    for fmt, key, filename, reference in (
        ("onnx", "model", "mlp.onnx", "tflite"),
        ("tflite", "graph", "mlp.tflite", "onnxruntime"),
    ):
        test = {"identifier": "x", "metric": "delay", "iter": 3, "reference": reference}
        write_json(pytester.path / f"{fmt}.json", spec(fmt, key, filename, test))
    result = pytester.runpytest("--aibench-spec=onnx.json", "--aibench-spec=tflite.json")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*tflite.json: tests[[]0[]].reference: 'onnxruntime', where another spec made "
            "'tflite' the reference of mlp[[]x[]]: one network has one reference framework*"
        ]
    )


SCALE = np.array([0.5, -2.0, 3.0], np.float32)
BIAS = np.array([1.0, 0.25, -1.0], np.float32)


def per_channel_onnx(pytester: Pytester) -> None:
    """y = x * SCALE[c] + BIAS[c] over a 1x3x4x5 channels-first image."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes=[
            helper.make_node("Mul", ["x", "scale"], ["scaled"]),
            helper.make_node("Add", ["scaled", "bias"], ["y"]),
        ],
        name="per_channel",
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 5])],
        initializer=[
            numpy_helper.from_array(SCALE.reshape(1, 3, 1, 1), "scale"),
            numpy_helper.from_array(BIAS.reshape(1, 3, 1, 1), "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    (pytester.path / "mlp.onnx").write_bytes(model.SerializeToString())


def per_channel_tflite(pytester: Pytester) -> None:
    """The same network channels-last (1x4x5x3), as a converter writes it for LiteRT."""
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    import flatbuffers

    buffers = [schema.BufferT() for _ in range(6)]  # 0: empty; 1, 2: constants
    buffers[1].data, buffers[2].data = SCALE.tobytes(), BIAS.tobytes()
    subgraph = schema.SubGraphT()
    subgraph.tensors = [
        make_mlp.tflite_tensor(schema, "x", [1, 4, 5, 3], 3),
        make_mlp.tflite_tensor(schema, "scale", [3], 1),
        make_mlp.tflite_tensor(schema, "bias", [3], 2),
        make_mlp.tflite_tensor(schema, "scaled", [1, 4, 5, 3], 4),
        make_mlp.tflite_tensor(schema, "y", [1, 4, 5, 3], 5),
    ]
    subgraph.inputs, subgraph.outputs = [0], [4]
    subgraph.operators = []
    for code_index, inputs, output in ((0, [0, 1], 3), (1, [3, 2], 4)):
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
    (pytester.path / "mlp.tflite").write_bytes(builder.Output())


def test_a_channels_last_model_agrees_with_its_channels_first_original(
    pytester: Pytester,
) -> None:
    """``"layout": "NHWC"`` on the LiteRT spec: its random input holds the numbers ONNX
    Runtime's NCHW input holds, moved channels-last, and its output is compared channels-first.
    Without the field the two are not comparable (other input shapes) and say so."""
    per_channel_onnx(pytester)
    per_channel_tflite(pytester)
    test = {"identifier": "image", "metric": "delay", "iter": 3}
    write_json(pytester.path / "onnx.json", spec("onnx", "model", "mlp.onnx", test))

    def run(**layout: str) -> Any:
        tflite_spec = spec("tflite", "graph", "mlp.tflite", {**test, **layout})
        write_json(pytester.path / "tflite.json", tflite_spec)
        result = pytester.runpytest(
            "--aibench-spec=onnx.json",
            "--aibench-spec=tflite.json",
            "--aibench-reference=tflite",
            "--aibench-json=run.json",
        )
        result.assert_outcomes(passed=2)
        return result

    run().stdout.fnmatch_lines(
        ['mlp[[]image[]]*not compared: onnxruntime\'s input 0 *declare "layout": "NHWC"*']
    )
    run(layout="NHWC").stdout.fnmatch_lines(["mlp[[]image[]]*NHWC tensors compared as NCHW"])
    items = {case_of(item)["framework"]: item for item in written_run(pytester.path)["items"]}
    assert items["tflite"]["extra"]["inputs"]["x"]["shape"] == [1, 4, 5, 3]
    assert case_of(items["tflite"])["layout"] == "NHWC"
    errors = metrics_of(items["onnxruntime"])
    assert errors["y vs tflite max_abs_error"]["values"][0] < 1e-6
    assert errors["y vs tflite cosine_similarity"]["values"][0] == pytest.approx(1.0)


def test_a_layout_other_than_nchw_or_nhwc_fails_its_specs_collection(
    pytester: Pytester,
) -> None:
    test = {"identifier": "x", "metric": "delay", "layout": "nhwc"}
    write_json(pytester.path / "tflite.json", spec("tflite", "graph", "mlp.tflite", test))
    result = pytester.runpytest("--aibench-spec=tflite.json")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(['*tflite.json*tests[[]0[]].layout*one of "NCHW", "NHWC"*'])


def test_backends_are_recorded_and_a_missing_one_skips_naming_what_there_is(
    pytester: Pytester,
) -> None:
    """--aibench-backend: xnnpack runs LiteRT with its delegate and is recorded; ONNX Runtime
    has no XNNPACK provider in this build and skips naming the ones it has."""
    onnx_model(pytester)
    tflite_model(pytester)
    for fmt, key, filename in (("onnx", "model", "mlp.onnx"), ("tflite", "graph", "mlp.tflite")):
        test = {"identifier": "x", "metric": "delay", "iter": 3}
        write_json(pytester.path / f"{fmt}.json", spec(fmt, key, filename, test))
    result = pytester.runpytest(
        "--aibench-spec=onnx.json",
        "--aibench-spec=tflite.json",
        "--aibench-backend=xnnpack",
        "--aibench-json=run.json",
        "-rs",
    )
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if "XnnpackExecutionProvider" in available:
        result.assert_outcomes(passed=2)
    else:
        result.assert_outcomes(passed=1, skipped=1)
        named = ", ".join(available)
        result.stdout.fnmatch_lines(
            [f"*XnnpackExecutionProvider is not in this onnxruntime build (available: {named})*"]
        )
    (litert,) = [
        i for i in written_run(pytester.path)["items"] if case_of(i)["framework"] == "tflite"
    ]
    assert litert["extra"]["backend"] == {"name": "xnnpack", "delegate": "XNNPACK"}


class StepClock:
    """A clock that moves 1 us per reading, and a whole second when the runner's own work
    (not the framework's) runs: a load that counts that work is a second too long."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        self.now += 1000
        return self.now

    def runner_work(self, work: Any) -> Any:
        def slow(*args: Any, **kwargs: Any) -> Any:
            self.now += 10**9
            return work(*args, **kwargs)

        return slow


def test_load_times_the_frameworks_steps_and_not_the_runners_own(
    pytester: Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NET load is file to ready interpreter: making the inputs between LiteRT's load steps and
    looking up its version (20-35 ms in a fresh process) are the runner's, not the model's."""
    from pytest_aibench.runners import inprocess, tflite

    tflite_model(pytester)
    clock = StepClock()
    monkeypatch.setattr(inprocess.ColdStart, "clock", staticmethod(clock))
    monkeypatch.setattr(tflite, "make_inputs", clock.runner_work(inprocess.make_inputs))
    monkeypatch.setattr(tflite, "_version", clock.runner_work(tflite._version))
    test = {"identifier": "x", "metric": "delay", "iter": 2}
    write_json(pytester.path / "mlp.json", spec("tflite", "graph", "mlp.tflite", test))
    result = pytester.runpytest(
        "--aibench-spec=mlp.json", "--aibench-json=run.json", "-p", "no:xdist"
    )
    result.assert_outcomes(passed=1)
    (item,) = written_run(pytester.path)["items"]
    # two timed steps (the interpreter made; its tensors sized and allocated), 1 us each
    assert metrics_of(item)["NET load"]["values"] == [2.0]
    assert item["extra"]["litert"]["version"]  # looked up, outside the load


def test_cold_start_in_fresh_processes(pytester: Pytester) -> None:
    """--aibench-cold 2: load, first inference and memory from two fresh processes (the
    warm loop stays the pytest process's)."""
    onnx_model(pytester)
    test = {"identifier": "x", "metric": "delay", "iter": 4}
    write_json(pytester.path / "onnx.json", spec("onnx", "model", "mlp.onnx", test))
    result = pytester.runpytest(
        "--aibench-spec=onnx.json", "--aibench-cold=2", "--aibench-json=run.json"
    )
    result.assert_outcomes(passed=1)
    (item,) = written_run(pytester.path)["items"]
    metrics = metrics_of(item)
    for key in ("NET load", "NET first_inference", "NET peak_memory", "NET memory_increment"):
        assert len(metrics[key]["values"]) == 2, key
    assert len(metrics["NET latency"]["values"]) == 4
    assert item["extra"]["cold"] == {"fresh_processes": 2}
    # a fresh process holds onnxruntime and the model (about 65 MiB here), not what this
    # pytest process holds (torch and the other frameworks conftest imports: over 300 MiB)
    assert max(metrics["NET peak_memory"]["values"]) < 300


def test_a_control_worker_that_never_answers_fails_its_item_within_the_timeout(
    pytester: Pytester,
) -> None:
    """A control Python that hangs (as a stopped worker does): the item fails within
    --aibench-timeout, located and said; the session goes on; nothing it started is left."""
    base = ab_onnx_project(pytester, 20, 20)
    marker = f"sleep 600.{os.getpid()}{time.monotonic_ns() % 1000}"  # found by pgrep below
    hang = write_program(pytester.path / "hang.sh", f"#!/bin/sh\n{marker}\n")
    spec = json.loads((pytester.path / "chain.json").read_text())
    spec["tests"].append({"identifier": "second", "metric": "delay", "iter": 5})
    write_json(pytester.path / "chain.json", spec)
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--aibench-spec=chain.json",
        f"--aibench-ab-control-root={base}",
        f"--aibench-ab-control-python={hang}",
        "--aibench-timeout=3",
        timeout=120,
    )
    assert time.monotonic() - started < 60
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*the A/B worker (*hang.sh) gave no answer within 3 s (the case's timeout*killed*"]
    )
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout == ""


def test_a_control_python_that_does_not_exist_is_a_usage_error(pytester: Pytester) -> None:
    base = ab_onnx_project(pytester, 20, 20)
    result = pytester.runpytest(
        "--aibench-spec=chain.json",
        f"--aibench-ab-control-root={base}",
        "--aibench-ab-control-python=/nonexistent/python",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--aibench-ab-control-python: expected a program to run, found no executable "
            "'/nonexistent/python'"
        ]
    )


def test_a_framework_error_is_one_located_paragraph_with_its_own_message(
    pytester: Pytester,
) -> None:
    onnx_model(pytester)
    wrong = {"x": {"shapes": [[1, 65]], "type": "float"}}  # the model takes [N, 64]
    test = {"identifier": "wrong", "metric": "delay", "iter": 3, "inputs": wrong}
    write_json(pytester.path / "mlp.json", spec("onnx", "model", "mlp.onnx", test))
    short = pytester.runpytest("--aibench-spec=mlp.json")
    short.assert_outcomes(failed=1)
    short.stdout.fnmatch_lines(
        [
            "*mlp.json tests[[]0[]] (mlp, wrong): raised in onnxruntime (onnxruntime/*.py) line *",
            "  *INVALID_ARGUMENT : Got invalid dimensions for input: x*",
            "(--tb=long shows the whole traceback)",
        ]
    )
    assert "def run_case" not in short.stdout.str()  # none of the plugin's frames
    full = pytester.runpytest("--aibench-spec=mlp.json", "--tb=long")
    assert "def run_case" in full.stdout.str() and "INVALID_ARGUMENT" in full.stdout.str()
