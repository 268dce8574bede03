"""Benchmark programs through the real runner path: TFLite's benchmark_model (both output
generations, op profiling), Caffe2's speed_benchmark and speed_benchmark_torch. None of them can
run here, so programs in tests/data print their output in the tools' real formats."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest import Pytester

from pytest_aibench.records import ItemRecord

from .helpers import generic_spec, metrics_of, write_json, write_program, written_run

DATA = Path(__file__).parent / "data"


def runs(pytester: Pytester) -> list[str]:
    return (pytester.path / "runs.txt").read_text().splitlines()


def tflite_spec(recorded: str, **test: object) -> dict[str, Any]:
    return {
        "model": {
            "name": "squeezenet",
            "format": "tflite",
            "files": {"graph": {"filename": "squeezenet.tflite", "location": "squeezenet.tflite"}},
        },
        "tests": [
            {
                "identifier": "x",
                "metric": "delay",
                "warmup": 1,
                "iter": 50,
                "env": {"RUNS_FILE": "{HERE}/runs.txt", "RECORDED_OUTPUT": recorded},
                **test,
            }
        ],
    }


def values_of(item: ItemRecord) -> dict[str, list[float]]:
    """The cold-start and memory figures benchmark_model printed, by metric key."""
    wanted = ("NET load", "NET first_inference", "NET memory_increment", "NET peak_memory")
    return {key: m["values"] for key, m in metrics_of(item).items() if key in wanted}


@pytest.fixture
def tflite_setup(pytester: Pytester) -> list[str]:
    (pytester.path / "squeezenet.tflite").write_bytes(b"not parsed by the fake program")
    return [
        "--aibench-json=run.json",
        f"--aibench-program={DATA / 'fake_benchmark_model.py'}",
        f"--aibench-string-map={json.dumps({'HERE': str(pytester.path)})}",
    ]


@pytest.mark.parametrize("recorded", ["benchmark_model_v1.txt", "benchmark_model_v2.txt"])
def test_benchmark_model_output_becomes_summary_and_operators(
    pytester: Pytester, tflite_setup: list[str], recorded: str
) -> None:
    command = (
        "{program} --graph={files.graph} --warmup_runs={warmup} --num_runs={iter} "
        "--enable_op_profiling=true"
    )
    write_json(pytester.path / "tf.json", tflite_spec(recorded, commands=[command]))
    result = pytester.runpytest("--aibench-spec=tf.json", *tflite_setup)
    result.assert_outcomes(passed=1)
    item = written_run(pytester.path)["items"][0]
    net = metrics_of(item)["NET latency"]
    assert net["values"] == [] and net["summary_source"] == "tool" and net["num_runs"] == 50
    if recorded.endswith("v1.txt"):  # no median printed: p50 stays unknown
        assert net["summary"] == {
            "mean": 57644.1,
            "p0": 56840.0,
            "p100": 60125.0,
            "stdev": 603.0,
            "p50": None,
        }
        assert metrics_of(item)["NET warmup_avg"]["values"] == [58620.3]
        # This version prints no peak: the one the host's ``time -v`` counted stands in.
        measured = values_of(item)
        [peak] = measured.pop("NET peak_memory")
        assert measured == {"NET load": [41562.0], "NET memory_increment": [13.9]} and peak > 0
    else:
        assert net["summary"]["p50"] == 55260.0 and net["summary"]["p95"] == 56330.0
        assert values_of(item) == {
            "NET load": [38900.0],
            "NET first_inference": [61230.0],
            "NET memory_increment": [14.7],
            "NET peak_memory": [17.25],
        }
    operators = item["operators"]
    assert [op["name"] for op in operators] == [
        "squeezenet/conv1/Relu",
        "squeezenet/fire2/squeeze1x1/Relu",
        "squeezenet/maxpool1/MaxPool",
        "squeezenet/fire2/concat",
    ]
    assert operators[0]["type"] == "CONV_2D" and operators[0]["mean"] == 3981.0
    assert operators[0]["p50"] is None  # the tool gives an average only
    assert operators[0]["share"] == pytest.approx(3.981 / 5.854)
    assert runs(pytester) == [
        f"--graph={item_graph(pytester)} --warmup_runs=1 --num_runs=50 --enable_op_profiling=true"
    ]
    result.stdout.fnmatch_lines(
        [
            "*tf.json::squeezenet[[]x-host[]]*NET latency*-*50*us",
            "*top 5 operators*",
            "*squeezenet/conv1/Relu*CONV_2D*3,981*68.0%",
        ]
    )


def item_graph(pytester: Pytester) -> str:
    """Where the graph was pushed: the only line of runs.txt names it."""
    first = runs(pytester)[0].split()[0]
    assert first.startswith("--graph=") and first.endswith("/squeezenet.tflite")
    return first.removeprefix("--graph=")


def test_tflite_legacy_inputs_compose_the_benchmark_model_command(
    pytester: Pytester, tflite_setup: list[str]
) -> None:
    spec = tflite_spec(
        "benchmark_model_v2.txt",
        inputs={
            "data": {"shapes": [[1, 8, 8, 3], [1, 4, 4, 3]], "type": "float"},
            "Placeholder": {"shapes": [[1, 224, 224, 3], [1, 96, 96, 3]], "type": "float"},
        },
    )
    write_json(pytester.path / "tf.json", spec)
    result = pytester.runpytest("--aibench-spec=tf.json", *tflite_setup)
    result.assert_outcomes(passed=2)
    assert [line.split(" ", 1)[1] for line in runs(pytester)] == [
        "--warmup_runs=1 --num_runs=50 --input_layer=Placeholder --input_layer_shape=1,224,224,3",
        "--warmup_runs=1 --num_runs=50 --input_layer=Placeholder --input_layer_shape=1,96,96,3",
    ]


def caffe2_spec(**test: object) -> dict[str, Any]:
    files = {
        name: {"filename": f"{name}_net.pb", "location": f"{name}_net.pb"}
        for name in ("init", "predict")
    }
    return {
        "model": {"name": "squeezenet", "format": "caffe2", "files": files},
        "tests": [
            {
                "identifier": "{ID}",
                "metric": "delay",
                "warmup": 1,
                "iter": 50,
                "env": {"RUNS_FILE": "{HERE}/runs.txt"},
                **test,
            }
        ],
    }


@pytest.fixture
def caffe2_setup(pytester: Pytester) -> list[str]:
    for name in ("init", "predict"):
        (pytester.path / f"{name}_net.pb").write_bytes(b"\x0a\x00")
    return [
        "--aibench-json=run.json",
        f"--aibench-program={DATA / 'fake_speed_benchmark.py'}",
        f"--aibench-string-map={json.dumps({'HERE': str(pytester.path)})}",
    ]


def test_caffe2_program_is_rerun_until_iter_net_rows(
    pytester: Pytester, caffe2_setup: list[str]
) -> None:
    command = (
        "{program} --net {files.predict} --init_net {files.init} --warmup {warmup} "
        "--iter {iter} --input data --input_dims 1,3,224,224 --input_type float "
        "--run_individual true"
    )
    write_json(pytester.path / "c2.json", caffe2_spec(commands=[command]))
    result = pytester.runpytest("--aibench-spec=c2.json", *caffe2_setup)
    result.assert_outcomes(passed=1)
    # 20 NET rows per run: 3 runs for 50 rows. Counting operator rows too (9 per NET row, as
    # FAI-PEP does) would have stopped after the first run.
    assert len(runs(pytester)) == 3
    item = written_run(pytester.path)["items"][0]
    metrics = metrics_of(item)
    assert len(metrics["NET latency"]["values"]) == 60
    assert metrics["NET latency"]["values"][:2] == [15000.0, 15001.0]
    assert metrics["conv1 tensor_shapes"]["info_string"] == "[[1, 3, 224, 224, ], ]"
    operators = {op["name"]: op for op in item["operators"]}
    assert set(operators) == {"conv1", "relu1", "fc"}
    assert len(operators["conv1"]["values"]) == 60
    assert operators["conv1"]["p50"] == pytest.approx(812.4 + 9.5)


def test_caffe2_legacy_inputs_compose_the_speed_benchmark_command(
    pytester: Pytester, caffe2_setup: list[str]
) -> None:
    spec = caffe2_spec(
        commands={"caffe2": {"run_individual": "true"}},
        inputs={"data": {"shapes": [[1, 3, 30, 30], [64, 3, 30, 30]], "type": "float"}},
    )
    spec["tests"][0].update(iter=5)
    write_json(pytester.path / "c2.json", spec)
    result = pytester.runpytest("--aibench-spec=c2.json", *caffe2_setup)
    result.assert_outcomes(passed=2)
    composed = [line.split(" ", 1)[1].split(" --init_net ")[1] for line in runs(pytester)]
    tail = " --input data --input_type float --run_individual true"
    assert [line.split(" ", 1)[1] for line in composed] == [
        "--input_dims 1,3,30,30" + tail,
        "--input_dims 64,3,30,30" + tail,
    ]


def test_caffe2_program_without_net_rows_fails_after_one_run(
    pytester: Pytester, caffe2_setup: list[str]
) -> None:
    write_json(pytester.path / "c2.json", caffe2_spec(commands=["{program} --iter 0"]))
    result = pytester.runpytest("--aibench-spec=c2.json", *caffe2_setup)
    result.assert_outcomes(failed=1)
    assert len(runs(pytester)) == 1
    result.stdout.fnmatch_lines(["*no NET latency rows in 1 run(s) of the program*"])


def test_speed_benchmark_torch_output_through_the_pytorch_runner(pytester: Pytester) -> None:
    (pytester.path / "model.pt").write_bytes(b"not read by the fake program")
    spec = {
        "model": {
            "name": "mobilenet",
            "format": "pytorch",
            "files": {"model": {"filename": "model.pt", "location": "model.pt"}},
        },
        "tests": [
            {
                "identifier": "cpu",
                "metric": "delay",
                "warmup": 2,
                "iter": 30,
                "env": {"RUNS_FILE": "{HERE}/runs.txt"},
                "inputs": {"x": {"shapes": [[1, 3, 224, 224]], "type": "float"}},
            }
        ],
    }
    write_json(pytester.path / "pt.json", spec)
    result = pytester.runpytest(
        "--aibench-spec=pt.json",
        "--aibench-json=run.json",
        f"--aibench-program={DATA / 'fake_speed_benchmark_torch.py'}",
        f"--aibench-string-map={json.dumps({'HERE': str(pytester.path)})}",
    )
    result.assert_outcomes(passed=1)
    assert runs(pytester)[0].split(" ", 2)[2] == (
        "--warmup 2 --iter 30 --input_dims 1,3,224,224 --input_type float --report_pep true"
    )
    net = metrics_of(written_run(pytester.path)["items"][0])["NET latency"]
    assert len(net["values"]) == 30 and net["summary"]["p0"] == 8100.0


@pytest.mark.parametrize(
    ("backend", "flag"), [("gpu", "--use_gpu=true"), ("hexagon", "--use_hexagon=true")]
)
def test_a_backend_is_benchmark_models_delegate_flag(
    pytester: Pytester, tflite_setup: list[str], backend: str, flag: str
) -> None:
    """The flag goes after the main command, whatever the spec calls the program."""
    command = "{program} --graph={files.graph} --num_runs={iter}"
    write_json(pytester.path / "tf.json", tflite_spec("benchmark_model_v2.txt", commands=[command]))
    result = pytester.runpytest(
        "--aibench-spec=tf.json", f"--aibench-backend={backend}", *tflite_setup
    )
    result.assert_outcomes(passed=1)
    assert runs(pytester)[0].endswith(f" --num_runs=50 {flag}")
    extra = written_run(pytester.path)["items"][0]["extra"]
    assert extra["backend"] == {"name": backend, "arguments": [flag]}


def test_a_backend_benchmark_model_lacks_skips_naming_its_delegates(
    pytester: Pytester, tflite_setup: list[str]
) -> None:
    command = "{program} --graph={files.graph}"
    write_json(pytester.path / "tf.json", tflite_spec("benchmark_model_v2.txt", commands=[command]))
    result = pytester.runpytest(
        "--aibench-spec=tf.json", "--aibench-backend=mkl", "-rs", *tflite_setup
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*--aibench-backend mkl is no benchmark_model delegate (it has xnnpack, gpu, nnapi,*"]
    )
    assert not (pytester.path / "runs.txt").exists()  # it never ran


def test_fai_peps_backend_is_given_to_each_command_that_runs_the_program(
    pytester: Pytester, caffe2_setup: list[str]
) -> None:
    command = "{program} --net {files.predict} --init_net {files.init} --iter {iter}"
    write_json(pytester.path / "c2.json", caffe2_spec(commands=["echo prepare", command], iter=20))
    result = pytester.runpytest("--aibench-spec=c2.json", "--aibench-backend=nnpack", *caffe2_setup)
    result.assert_outcomes(passed=1)
    [ran] = runs(pytester)  # the fake records its own runs only; echo was not told
    assert ran.endswith(" --iter 20 --backend nnpack")
    extra = written_run(pytester.path)["items"][0]["extra"]
    assert extra["backend"] == {"name": "nnpack", "arguments": ["--backend", "nnpack"]}


def test_a_backend_no_command_can_be_told_of_skips(pytester: Pytester) -> None:
    """Commands that run no {program}: recording the backend would be a result it did not run on."""
    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    result = pytester.runpytest("--aibench-spec=demo.json", "--aibench-backend=opengl", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*--aibench-backend opengl: no command of the test runs {program}, which FAI-PEP tells*"]
    )


COLD_OBSERVER = """#!/usr/bin/env python3
import json
def row(metric, value):
    print("PyTorchObserver " + json.dumps(
        {"type": "NET", "metric": metric, "unit": "us", "value": str(value)}))
row("load", 41000)
row("first_inference", 9100)
for i in range(3):
    row("latency", 8100 + i)
"""


def test_cold_start_rows_a_program_prints_are_its_cold_start_metrics(pytester: Pytester) -> None:
    """No Caffe2 or PyTorch binary we know prints them; a program that does (FAI-PEP's
    emitMetric helper prints any metric) gets the in-process runners' metric names."""
    write_program(pytester.path / "prog.py", COLD_OBSERVER)
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    result = pytester.runpytest("--aibench-spec=demo.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    metrics = metrics_of(written_run(pytester.path)["items"][0])
    assert metrics["NET load"]["values"] == [41000.0]
    assert metrics["NET first_inference"]["values"] == [9100.0]
    assert metrics["NET latency"]["values"] == [8100.0, 8101.0, 8102.0]


@pytest.mark.parametrize("command", ["{files.program} --iter {iter}", "{program} --iter {iter}"])
def test_a_program_spec_under_a_control_root_runs_both_sides_as_a_plain_run(
    pytester: Pytester, command: str
) -> None:
    """A/A against a base checkout: both sides' commands run in this process and their output
    is parsed with the run's observer prefixes, for programs named by the spec's files and by
    {program} alike."""
    base = pytester.path / "base"
    for root in (pytester.path, base):
        write_program(root / "prog.py")
    tests = [{"identifier": "ab", "metric": "delay", "iter": 3, "commands": [command]}]
    write_json(pytester.path / "s.json", generic_spec(tests=tests))
    result = pytester.runpytest(
        "--aibench-spec=s.json",
        f"--aibench-ab-control-root={base}",
        f"--aibench-program={pytester.path / 'prog.py'}",
        "--aibench-json=run.json",
    )
    result.assert_outcomes(passed=1)
    item = written_run(pytester.path)["items"][0]
    assert item["comparison"] == "ab"
    assert {v["status"] for v in item["verdicts"]} == {"unchanged"}
    assert item["extra"]["ab"]["blocks"] >= 5


WRITES_OUTPUT = """#!/usr/bin/env python3
import json, sys
print("AIBENCH " + json.dumps({"type": "NET", "metric": "latency", "unit": "us", "value": 5}))
open(sys.argv[1], "wb").write(bytes(8))  # two float32 zeros, raw
"""


@pytest.mark.parametrize(("output", "passed"), [("y", True), ("z", False)])
def test_an_output_file_is_compared_with_the_golden_of_its_name(
    pytester: Pytester, output: str, passed: bool
) -> None:
    write_program(pytester.path / "prog.py", WRITES_OUTPUT)
    np.save(pytester.path / "y.npy", np.zeros((1, 2), dtype=np.float32))
    test = {
        "identifier": "t",
        "metric": "delay",
        "golden_files": {"y": {"filename": "y.npy", "location": "y.npy"}},
        "output_files": {output: {"filename": "out.bin", "location": "{TGTDIR}/out.bin"}},
        "commands": [f"{{files.program}} {{output_files.{output}}}"],
    }
    write_json(pytester.path / "g.json", generic_spec("g", tests=[test]))
    result = pytester.runpytest("--aibench-spec=g.json", "--aibench-json=run.json")
    if passed:  # raw bytes, read with the golden's type and shape
        result.assert_outcomes(passed=1)
        item = written_run(pytester.path)["items"][0]
        assert metrics_of(item)["y max_abs_error"]["values"] == [0.0]
    else:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*no output file is named 'y'*output_files has [[]'z'[]]*"])
