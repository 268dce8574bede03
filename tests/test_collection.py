"""Spec files become pytest items: node ids, marks, selection, errors, fixtures."""

import json

import pytest
from pytest import Pytester

from .helpers import caffe2_spec, generic_spec, write_json, write_program


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line]


def test_items_have_readable_stable_node_ids(pytester: Pytester) -> None:
    write_json(
        pytester.path / "specs/squeezenet/squeezenet.json",
        caffe2_spec("squeezenet", ["1,3,30,30", "64,3,30,30", "1,3,224,224"]),
    )
    result = pytester.runpytest("--aibench-spec=specs", "--collect-only", "-q")
    assert collected(result) == [
        f"specs/squeezenet/squeezenet.json::squeezenet[{i}-host]" for i in range(3)
    ]
    assert result.ret == 0


def test_benchmark_list_collects_the_cases_of_every_listed_model(pytester: Pytester) -> None:
    for name in ("vgg16", "vgg19", "googlenet", "inception_v1"):
        write_json(pytester.path / f"models/{name}/{name}.json", caffe2_spec(name, ["1,3,224,224"]))
    write_json(
        pytester.path / "models/squeezenet/squeezenet.json",
        caffe2_spec("squeezenet", ["1,3,30,30", "64,3,30,30", "1,3,224,224"]),
    )
    write_json(
        pytester.path / "benchmarks/cnn.json",
        {
            "meta": {"group": "CNN", "command_args": "--backend mkl"},
            "benchmarks": [
                f"../models/{n}/{n}.json"
                for n in ("vgg16", "vgg19", "googlenet", "inception_v1", "squeezenet")
            ],
        },
    )
    result = pytester.runpytest("--aibench-spec=benchmarks/cnn.json", "--collect-only", "-q")
    assert [line.split("::")[1] for line in collected(result)] == [
        "vgg16[0-host]",
        "vgg19[0-host]",
        "googlenet[0-host]",
        "inception_v1[0-host]",
        "squeezenet[0-host]",
        "squeezenet[1-host]",
        "squeezenet[2-host]",
    ]


def test_marks_and_keywords_select_items(pytester: Pytester) -> None:
    write_json(pytester.path / "s/sq.json", caffe2_spec("squeezenet", ["1", "2"]))
    write_json(pytester.path / "s/demo.json", generic_spec("demo"))
    marked = pytester.runpytest(
        "--aibench-spec=s", "--collect-only", "-q", "-m", "caffe2 and delay and host and aibench"
    )
    assert len(collected(marked)) == 2
    by_name = pytester.runpytest("--aibench-spec=s", "--collect-only", "-q", "-k", "demo")
    assert collected(by_name) == ["s/demo.json::demo[0-host]"]
    by_id = pytester.runpytest("--aibench-spec=s", "--collect-only", "-q", "-k", "squeezenet and 1")
    assert collected(by_id) == ["s/sq.json::squeezenet[1-host]"]


def test_strict_markers_accept_the_marks_items_carry(pytester: Pytester) -> None:
    write_json(
        pytester.path / "s/odd.json",
        {
            "model": {"name": "odd", "format": "my-format"},
            "tests": [{"metric": "latency-ish", "commands": ["x"]}],
        },
    )
    result = pytester.runpytest(
        "--aibench-spec=s",
        "--strict-markers",
        "--collect-only",
        "-q",
        "-m",
        "my_format and latency_ish",
    )
    assert collected(result) == ["s/odd.json::odd[0-host]"]
    assert result.ret == 0


def test_a_broken_spec_fails_its_own_collection_and_the_others_still_run(
    pytester: Pytester,
) -> None:
    write_program(pytester.path / "specs/good/prog.py")
    write_json(pytester.path / "specs/good/good.json", generic_spec("good"))
    (pytester.path / "specs/dup.json").write_text(
        '{"model": {"name": "m", "format": "tflite"}, "tests": [{"metric": "delay", '
        '"commands": ["{program}"], "commands": {"tflite": {"num_threads": "4"}}}]}'
    )
    bad = caffe2_spec("bad", ["1"])
    bad["tests"][0]["iter"] = "50"
    write_json(pytester.path / "specs/bad.json", bad)
    result = pytester.runpytest("--aibench-spec=specs")
    result.stdout.fnmatch_lines(
        [
            '*specs/bad.json: tests[[]0[]].iter: expected integer, found string "50"*',
            "*specs/dup.json: tests[[]0[]]: key 'commands' appears more than once*",
            "*1 passed*2 errors*",
        ]
    )
    assert result.ret == 1


def test_json_files_that_are_not_specs_are_ignored_in_spec_folders(pytester: Pytester) -> None:
    write_json(pytester.path / "specs/golden.json", [1.0, 2.0])
    write_json(pytester.path / "specs/config.json", {"threshold": 3})
    write_json(pytester.path / "specs/genai_config.json", {"model": {"type": "llama"}})
    write_json(pytester.path / "specs/sq.json", caffe2_spec("sq", ["1"]))
    result = pytester.runpytest("--aibench-spec=specs", "--collect-only", "-q")
    assert collected(result) == ["specs/sq.json::sq[0-host]"] and result.ret == 0


def test_spec_option_replaces_default_paths_and_joins_given_ones(pytester: Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    write_json(pytester.path / "specs/sq.json", caffe2_spec("sq", ["1"]))
    only_specs = pytester.runpytest("--aibench-spec=specs", "--collect-only", "-q")
    assert collected(only_specs) == ["specs/sq.json::sq[0-host]"]
    both = pytester.runpytest("test_plain.py", "--aibench-spec=specs", "--collect-only", "-q")
    assert sorted(collected(both)) == ["specs/sq.json::sq[0-host]", "test_plain.py::test_plain"]


def test_ini_specs_join_the_default_paths(pytester: Pytester) -> None:
    pytester.makeini("[pytest]\naibench_specs = specs\n")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    write_json(pytester.path / "specs/sq.json", caffe2_spec("sq", ["1"]))
    result = pytester.runpytest("--collect-only", "-q")
    assert sorted(collected(result)) == ["specs/sq.json::sq[0-host]", "test_plain.py::test_plain"]


def test_a_spec_node_id_can_be_run_alone(pytester: Pytester) -> None:
    write_json(pytester.path / "specs/sq.json", caffe2_spec("sq", ["1", "2"]))
    result = pytester.runpytest("specs/sq.json::sq[1-host]", "--collect-only", "-q")
    assert collected(result) == ["specs/sq.json::sq[1-host]"]


def test_missing_spec_path_is_a_usage_error(pytester: Pytester) -> None:
    result = pytester.runpytest("--aibench-spec=nowhere.json")
    result.stderr.fnmatch_lines(["*--aibench-spec nowhere.json: no such file or folder*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_bad_option_values_are_usage_errors(pytester: Pytester) -> None:
    result = pytester.runpytest("--aibench-string-map={oops", "--aibench-iterations=x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--aibench-" in result.stderr.str()


def test_duplicate_identifiers_still_give_unique_node_ids(pytester: Pytester) -> None:
    spec = generic_spec(
        "demo", tests=[{"identifier": "same", "metric": "delay", "commands": ["x"]}] * 2
    )
    write_json(pytester.path / "s.json", spec)
    result = pytester.runpytest("--aibench-spec=s.json", "--collect-only", "-q")
    assert collected(result) == ["s.json::demo[same-host]", "s.json::demo[same-host-1]"]


def test_collection_is_deterministic_and_touches_no_network(pytester: Pytester) -> None:
    write_json(pytester.path / "specs/sq.json", caffe2_spec("sq", ["1", "2", "3"]))
    first = pytester.runpytest(
        "--aibench-spec=specs", "--collect-only", "-q", "--aibench-model-cache=cache"
    )
    second = pytester.runpytest(
        "--aibench-spec=specs", "--collect-only", "-q", "--aibench-model-cache=cache"
    )
    assert collected(first) == collected(second)
    assert not (pytester.path / "cache").exists()  # nothing was downloaded


def test_user_autouse_fixtures_apply_to_spec_items(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    pytester.makeconftest(
        "import pytest\n"
        "SEEN = []\n"
        "@pytest.fixture(autouse=True)\n"
        "def tag(request, aibench_case):\n"
        "    request.node.user_properties.append(('tag', aibench_case.name))\n"
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'call':\n"
        "        print('TAGGED', dict(report.user_properties).get('tag'))\n"
    )
    result = pytester.runpytest("--aibench-spec=demo.json", "-s")
    result.stdout.fnmatch_lines(["*TAGGED demo*", "*1 passed*"])


def test_an_unknown_framework_fails_its_item_instead_of_skipping(pytester: Pytester) -> None:
    """A typo in a framework must not keep CI green as a skip would."""
    write_json(
        pytester.path / "mx.json",
        {
            "model": {"name": "sq", "format": "mxnet"},
            "tests": [{"metric": "delay", "commands": ["{program}"]}],
        },
    )
    result = pytester.runpytest("--aibench-spec=mx.json")
    result.stdout.fnmatch_lines(
        ["*mx.json tests[[]0[]]: no runner for framework 'mxnet' (model format 'mxnet')*"]
    )
    result.assert_outcomes(errors=1)


def test_a_plugin_can_add_a_runner_through_the_hook(pytester: Pytester) -> None:
    write_json(
        pytester.path / "tf.json",
        {"model": {"name": "sq", "format": "mxnet"}, "tests": [{"metric": "delay"}]},
    )
    pytester.makeconftest(
        "class Fixed:\n"
        "    name = 'fixed'\n"
        "    def unavailable(self, case, program):\n"
        "        return None\n"
        "    def run(self, context):\n"
        "        context.recorder.record('NET', 'latency', 'us', [1.0, 2.0, 3.0])\n"
        "def pytest_aibench_runner(config, framework):\n"
        "    return Fixed() if framework == 'mxnet' else None\n"
    )
    result = pytester.runpytest("--aibench-spec=tf.json", "--aibench-json=run.json")
    assert result.ret == 0
    run = json.loads((pytester.path / "run.json").read_text())
    assert run["items"][0]["metrics"][0]["values"] == [1.0, 2.0, 3.0]


def test_yaml_specs_collect_like_json(pytester: Pytester) -> None:
    (pytester.path / "specs").mkdir()
    (pytester.path / "specs/mlp.yaml").write_text(
        "model: {name: mlp, format: onnx}\n"
        "tests:\n"
        "  - {identifier: '{ID}', metric: delay, inputs: {x: {shapes: [[1, 4], [2, 4]]}}}\n"
    )
    result = pytester.runpytest("--aibench-spec=specs", "--collect-only", "-q")
    assert collected(result) == ["specs/mlp.yaml::mlp[0-host]", "specs/mlp.yaml::mlp[1-host]"]
