"""Items run for real: generic programs, ONNX Runtime, the aibench fixture, the run file."""

import os
import shutil
from pathlib import Path

import pytest
from pytest import MonkeyPatch, Pytester

from .conftest import FileServer
from .helpers import case_of, generic_spec, metrics_of, write_json, write_program, written_run


def test_generic_program_results_are_parsed_recorded_and_summarised(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    result = pytester.runpytest("--aibench-spec=demo.json", "--aibench-json=run.json")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*aibench: 3 metric rows from 1 items*",
            "item*metric*p50*p10*p90*MAD*n*unit",
            "demo.json::demo[[]0-host[]]*NET latency*11.00*10.20*11.80*1.00*3*ms",
            "demo.json::demo[[]0-host[]]*NET peak_memory*1*MiB",
            "demo.json::demo[[]0-host[]]*conv1 latency*4.00*",
        ]
    )
    run = written_run(pytester.path)
    assert run["format"] == "pytest-aibench-run" and run["version"] == 1
    item = run["items"][0]
    assert item["nodeid"] == "demo.json::demo[0-host]" and item["outcome"] == "passed"
    assert case_of(item)["model"] == "demo" and item["device"] and item["device"]["kind"] == "host"
    net = metrics_of(item)["NET latency"]
    assert net["values"] == [10.0, 11.0, 12.0]
    assert net["summary"]["p50"] == 11.0 and net["num_runs"] == 3
    assert set(run["machine"]) >= {"node", "system", "cpu", "python"}


def test_placeholders_env_output_files_and_repeat(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py")
    spec = generic_spec(
        "demo",
        repeat=2,
        tests=[
            {
                "identifier": "{ID}",
                "metric": "delay",
                "iter": 2,
                "platform_args": {"env": {"EXIT_CODE": "0"}},
                "output_files": {"out": {"filename": "out.txt", "location": "{TGTDIR}/out.txt"}},
                "commands": ["{files.program} --iter {iter} --out {output_files.out}"],
            }
        ],
    )
    write_json(pytester.path / "demo.json", spec)
    result = pytester.runpytest("--aibench-spec=demo.json", "--aibench-json=run.json")
    assert result.ret == 0, result.stdout.str()
    values = metrics_of(written_run(pytester.path)["items"][0])["NET latency"]["values"]
    assert values == [10.0, 11.0, 10.0, 11.0]  # two repeat indexes, two iterations each


def test_iterations_option_overrides_the_spec(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    pytester.runpytest(
        "--aibench-spec=demo.json", "--aibench-json=run.json", "--aibench-iterations=5"
    )
    assert len(metrics_of(written_run(pytester.path)["items"][0])["NET latency"]["values"]) == 5


def test_failing_program_fails_its_item_with_the_exit_code_and_output(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py")
    spec = generic_spec(
        "demo",
        tests=[
            {
                "identifier": "x",
                "metric": "delay",
                "iter": 1,
                "env": {"EXIT_CODE": "7"},
                "commands": ["{files.program} --iter {iter}"],
            }
        ],
    )
    write_json(pytester.path / "demo.json", spec)
    result = pytester.runpytest("--aibench-spec=demo.json")
    result.stdout.fnmatch_lines(
        [
            "*demo.json tests[[]0[]]: */prog.py --iter 1 exited with code 7; "
            "its output ended with:",
            "PyTorchObserver*",
        ]
    )
    assert result.ret == 1


def test_program_placeholder_needs_the_program_option(pytester: Pytester) -> None:
    write_json(
        pytester.path / "demo.json",
        {
            "model": {"name": "demo", "format": "generic"},
            "tests": [{"metric": "delay", "iter": 2, "commands": ["{program} --iter {iter}"]}],
        },
    )
    missing = pytester.runpytest("--aibench-spec=demo.json", "-rs")
    missing.stdout.fnmatch_lines(
        [
            "*SKIPPED*demo.json tests[[]0[]] run {program} (a benchmark "
            "program); pass --aibench-program PATH*"
        ]
    )
    missing.assert_outcomes(skipped=1)
    program = write_program(pytester.path / "bin" / "bench")
    given = pytester.runpytest("--aibench-spec=demo.json", f"--aibench-program={program}")
    given.assert_outcomes(passed=1)


def test_command_timeout_kills_and_fails_the_item(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py", "#!/usr/bin/env python3\nimport time\ntime.sleep(60)")
    spec = generic_spec(
        "demo", tests=[{"metric": "delay", "timeout": 0.5, "commands": ["{files.program}"]}]
    )
    write_json(pytester.path / "demo.json", spec)
    result = pytester.runpytest("--aibench-spec=demo.json")
    result.stdout.fnmatch_lines(["*ran past its timeout of 0.5 s and was killed*"])
    assert result.ret == 1


def test_program_without_metric_rows_fails_clearly(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py", "#!/usr/bin/env python3\nprint('hello')\n")
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    result = pytester.runpytest("--aibench-spec=demo.json")
    result.stdout.fnmatch_lines(["*printed no metric rows*", "hello"])


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset is not installed")
def test_taskset_pins_the_command(pytester: Pytester) -> None:
    write_program(
        pytester.path / "prog.py",
        (
            "#!/usr/bin/env python3\nimport os, json\n"
            "print('AIBENCH ' + json.dumps({'type': 'NET', 'metric': 'cpus', 'unit': '',"
            " 'value': len(os.sched_getaffinity(0))}))\n"
        ),
    )
    spec = generic_spec(
        "demo",
        tests=[
            {"metric": "delay", "platform_args": {"taskset": "1"}, "commands": ["{files.program}"]}
        ],
    )
    write_json(pytester.path / "demo.json", spec)
    pytester.runpytest("--aibench-spec=demo.json", "--aibench-json=run.json")
    assert metrics_of(written_run(pytester.path)["items"][0])["NET cpus"]["values"] == [1.0]


def test_aibench_fixture_in_a_plain_python_test(pytester: Pytester) -> None:
    pytester.makepyfile(
        test_speed="""
        import pytest

        @pytest.mark.aibench(iterations=7, warmup=2)
        def test_sum(aibench):
            calls = []
            result = aibench(lambda n: calls.append(n) or sum(range(n)), 100)
            assert result == 4950
            # about a microsecond a call: batched, each sample the mean of `batch` calls
            batch = aibench.extra["calls_per_sample"]["NET latency"]
            assert batch >= 2 and len(calls) >= 2 + 7 * batch
            aibench.record("NET", "error", "abs", [0.5, 0.25])

        @pytest.mark.aibench(iterations=3, warmup=0)
        def test_slow_calls_are_one_a_sample(aibench):
            import time
            calls = []
            aibench(lambda: calls.append(1) or time.sleep(0.001))
            assert "calls_per_sample" not in aibench.extra and len(calls) == 1 + 3

        def test_default_counts(aibench):
            aibench(sorted, [3, 1, 2])
            assert (aibench.iterations, aibench.warmup) == (50, 5)

        def test_second_call_is_refused(aibench):
            aibench(len, "x")
            with pytest.raises(RuntimeError, match="already called"):
                aibench(len, "x")
            aibench.measure("parse", int, "3")

        def test_untouched_fixture_records_nothing():
            pass
    """
    )
    result = pytester.runpytest("--aibench-json=run.json")
    result.assert_outcomes(passed=5)
    items = {item["nodeid"].split("::")[1]: item for item in written_run(pytester.path)["items"]}
    assert set(items) == {
        "test_sum",
        "test_slow_calls_are_one_a_sample",
        "test_default_counts",
        "test_second_call_is_refused",
    }
    metrics = metrics_of(items["test_sum"])
    assert len(metrics["NET latency"]["values"]) == 7 and metrics["NET latency"]["unit"] == "us"
    assert all(value > 0 for value in metrics["NET latency"]["values"])
    assert metrics["NET error"]["values"] == [0.5, 0.25]
    assert set(metrics_of(items["test_second_call_is_refused"])) == {"NET latency", "parse latency"}
    assert items["test_sum"]["case"] is None


def test_xdist_run_file_has_every_item_exactly_once(pytester: Pytester) -> None:
    pytest.importorskip("xdist")
    write_program(pytester.path / "specs/prog.py")
    tests = [
        {
            "identifier": f"t{i}",
            "metric": "delay",
            "iter": 3,
            "commands": ["{files.program} --iter {iter}"],
        }
        for i in range(6)
    ]
    write_json(pytester.path / "specs/demo.json", generic_spec("demo", tests=tests))
    result = pytester.runpytest_subprocess(
        "-n", "2", "--aibench-spec=specs", "--aibench-json=run.json", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=6)
    nodeids = [item["nodeid"] for item in written_run(pytester.path)["items"]]
    assert sorted(nodeids) == sorted(f"specs/demo.json::demo[t{i}-host]" for i in range(6))
    result.stdout.fnmatch_lines(["*aibench: 18 metric rows from 6 items*"])


def test_interrupted_run_leaves_the_previous_run_file_intact(
    pytester: Pytester, monkeypatch: MonkeyPatch
) -> None:
    from pytest_aibench import atomic

    (pytester.path / "run.json").write_text('{"previous": true}')

    def interrupted_rename(source: str, target: str) -> None:  # written, not yet in place
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted_rename)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_json(pytester.path / "run.json", {"items": []})
    assert (pytester.path / "run.json").read_text() == '{"previous": true}'
    assert [p.name for p in pytester.path.iterdir()] == ["run.json"]


def test_custom_statistics_from_the_spec(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py")
    spec = generic_spec(
        "demo",
        tests=[
            {
                "metric": "delay",
                "iter": 5,
                "statistics": ["p95"],
                "commands": ["{files.program} --iter {iter}"],
            }
        ],
    )
    write_json(pytester.path / "demo.json", spec)
    pytester.runpytest("--aibench-spec=demo.json", "--aibench-json=run.json")
    summary = metrics_of(written_run(pytester.path)["items"][0])["NET latency"]["summary"]
    assert summary == {"p95": 13.8, "p50": 12.0}


def test_the_repository_specifications_run_here(pytester: Pytester) -> None:
    specs = Path(__file__).resolve().parents[1] / "specifications"
    result = pytester.runpytest_subprocess(
        f"--aibench-spec={specs}", "-rs", "-p", "no:cacheprovider", "--aibench-model-cache=cache"
    )
    result.assert_outcomes(passed=26, skipped=4)
    result.stdout.fnmatch_lines_random(
        [
            "*onnx/mlp/mlp.json::mlp[[]golden-host[]]*NET latency*us",
            "*tflite/mlp/mlp.json::mlp[[]golden-host[]]*y max_abs_error*",
            "*pytorch/mlp/mlp.json::mlp[[]golden-host[]]*aten::addmm*",
            "*observer_demo.json::observer_demo[[]input-file-host[]]*multiply latency*us",
            "*genai/decoder/decoder.json::decoder[[]greedy-golden-host[]]*NET decode_speed*",
            "SKIPPED [[]1[]]*caffe2/squeezenet*tests[[]0[]] run {program} "
            "(Caffe2's speed_benchmark)*",
            "SKIPPED [[]1[]]*tflite/squeezenet*run {program} (TFLite's benchmark_model)*",
            "SKIPPED [[]1[]]*busy_loop.json tests[[]0[]] run {program} (a benchmark program)*",
        ]
    )
    downloaded = [p.name for p in (pytester.path / "cache").glob("*") if p.name != ".md5"]
    assert downloaded == []  # skipped items download nothing


def test_files_reach_the_device_under_their_spec_filename(pytester: Pytester) -> None:
    write_program(
        pytester.path / "prog.py",
        (
            "#!/usr/bin/env python3\nimport json, os, sys\n"
            "names = [os.path.basename(p) for p in sys.argv[1].split(',')]\n"
            "contents = [open(p).read() for p in sys.argv[1].split(',')]\n"
            "assert names == ['first.txt', 'second.txt'], names\n"
            "assert contents == ['1', '2'], contents\n"
            "row = {'type': 'NET', 'metric': 'ok', 'unit': '', 'value': 1}\n"
            "print('AIBENCH ' + json.dumps(row))\n"
        ),
    )
    (pytester.path / "src").mkdir()
    (pytester.path / "src/a.txt").write_text("1")
    (pytester.path / "src/b.txt").write_text("2")
    spec = generic_spec(
        "demo",
        tests=[
            {
                "metric": "delay",
                "commands": ["{files.program} {input_files.data}"],
                "input_files": {
                    "data": [
                        {"filename": "first.txt", "location": "src/a.txt"},
                        {"filename": "second.txt", "location": "src/b.txt"},
                    ]
                },
            }
        ],
    )
    write_json(pytester.path / "demo.json", spec)
    result = pytester.runpytest("--aibench-spec=demo.json")
    result.assert_outcomes(passed=1)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_run_file_records_the_commit_of_the_checkout(pytester: Pytester) -> None:
    import subprocess

    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=pytester.path, check=True)
    subprocess.run([*git, "add", "."], cwd=pytester.path, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=pytester.path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=pytester.path, check=True, capture_output=True, text=True
    ).stdout.strip()
    pytester.runpytest("--aibench-spec=demo.json", "--aibench-json=run.json")
    commit = written_run(pytester.path)["commit"]
    assert commit and commit["id"] == head and commit["dirty"] is False


def test_junit_xml_does_not_receive_raw_samples(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    result = pytester.runpytest(
        "--aibench-spec=demo.json", "--junitxml=junit.xml", "--aibench-json=run.json"
    )
    result.assert_outcomes(passed=1)
    assert "values" not in (pytester.path / "junit.xml").read_text()
    assert written_run(pytester.path)["items"][0]["metrics"][0]["values"] == [10.0, 11.0, 12.0]


@pytest.mark.parametrize("workers", [0, 2])
def test_large_downloads_show_progress_and_run(
    pytester: Pytester, file_server: FileServer, workers: int
) -> None:
    import hashlib

    from .conftest import Route

    blob = b"x" * (5 << 20)
    file_server.routes["/big.bin"] = Route(body=blob)
    write_program(pytester.path / "prog.py")
    spec = generic_spec("demo")
    spec["model"]["files"]["blob"] = {
        "filename": "big.bin",
        "md5": hashlib.md5(blob).hexdigest(),
        "location": file_server.url("/big.bin"),
    }
    write_json(pytester.path / "demo.json", spec)
    options = ("--aibench-spec=demo.json", "--aibench-model-cache=cache")
    url = file_server.url("/big.bin")
    if workers:  # a worker writes to its stderr, which is the controller's
        pytest.importorskip("xdist")
        result = pytester.runpytest_subprocess(*options, "-n", str(workers))
        result.stderr.fnmatch_lines([f"[[]gw?[]] aibench: downloading {url}: 5.0 of 5.0 MiB"])
    else:
        result = pytester.runpytest(*options)
        result.stdout.fnmatch_lines([f"aibench: downloading {url}: 5.0 of 5.0 MiB"])
    result.assert_outcomes(passed=1)
    [cached] = (pytester.path / "cache/generic/demo").glob("*/big.bin")  # under its source key
    assert cached.stat().st_size == len(blob)


def test_accuracy_pipeline_with_host_steps_repeat_and_generated_inputs(pytester: Pytester) -> None:
    """FAI-PEP's accuracy flow: model preprocess once, per-index test preprocess making an input
    file, the benchmark writing an output file, per-index postprocess scoring it, and model
    postprocess aggregating; the scripts' metric lines are recorded."""
    write_program(
        pytester.path / "bench.py",
        (
            "#!/usr/bin/env python3\nimport sys\n"
            "values = [float(v) for v in open(sys.argv[1]).read().split()]\n"
            "open(sys.argv[2], 'w').write(str(int(sum(values) > 1)))\n"
        ),
    )
    write_program(
        pytester.path / "score.py",
        (
            "#!/usr/bin/env python3\nimport json, sys\n"
            "label = open(sys.argv[1]).read().split()[int(sys.argv[3])]\n"
            "got = open(sys.argv[2]).read()\n"
            "open(sys.argv[4], 'w').write(str(int(label == got)))\n"
            "row = {'type': 'shard', 'metric': 'top1', 'unit': 'number', "
            "'value': int(label == got)}\n"
            "print('Caffe2Observer ' + json.dumps(row))\n"
        ),
    )
    write_program(
        pytester.path / "total.py",
        (
            "#!/usr/bin/env python3\nimport glob, json, sys\n"
            "hits = sum(int(open(p).read()) for p in glob.glob(sys.argv[1] + '/result_*.txt'))\n"
            "row = {'type': 'total', 'metric': 'top1', 'unit': 'percent', 'value': 50 * hits}\n"
            "print('Caffe2Observer ' + json.dumps(row))\n"
        ),
    )
    spec = {
        "model": {
            "name": "classifier",
            "format": "generic",
            "repeat": 2,
            "files": {
                name: {"filename": f"{name}.py", "location": f"{name}.py"}
                for name in ("bench", "score", "total")
            },
            "preprocess": {"commands": ["sh -c 'echo 0 0 > {HOSTDIR}/labels.txt'"]},
            "postprocess": {"command": "{files.total} {HOSTDIR}"},
        },
        "tests": [
            {
                "identifier": "top1",
                "metric": "accuracy",
                "iter": 1,
                "preprocess": {"commands": ["sh -c 'echo {INDEX} {INDEX} > {input_files.tensor}'"]},
                "input_files": {
                    "tensor": {"filename": "tensor.txt", "location": "{HOSTDIR}/tensor.txt"}
                },
                "output_files": {"out": {"filename": "out.txt", "location": "{TGTDIR}/out.txt"}},
                "commands": ["{files.bench} {input_files.tensor} {output_files.out}"],
                "postprocess": {
                    "commands": [
                        "{files.score} {HOSTDIR}/labels.txt {output_files.out} "
                        "{INDEX} {HOSTDIR}/result_{INDEX}.txt"
                    ]
                },
            }
        ],
    }
    write_json(pytester.path / "acc.json", spec)
    result = pytester.runpytest("--aibench-spec=acc.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    metrics = metrics_of(written_run(pytester.path)["items"][0])
    # index 0: input "0 0" -> class 0, label 0: hit; index 1: input "1 1" -> class 1, label 0
    assert metrics["shard top1"]["values"] == [1.0, 0.0]
    assert metrics["total top1"]["values"] == [50.0]
