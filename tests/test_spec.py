"""Spec loading: schema, FAI-PEP legacy forms, expansion, errors that say where."""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_aibench.errors import SpecError
from pytest_aibench.spec.load import load_cases

ROOT = Path(__file__).resolve().parents[1]

Spec = dict[str, Any]  # a spec as json.load gives it
Mutation = Callable[[Spec], object]  # spoils a spec in place

CAFFE2_FILES = {
    "init": {
        "filename": "init_net.pb",
        "location": "https://example.invalid/init_net.pb",
        "md5": "a589d31d93c44d353ae2cd92af4d5a3f",
    },
    "predict": {
        "filename": "predict_net.pb",
        "location": "https://example.invalid/predict.pb",
        "md5": "694bfdd02e9ccb57bfc4acb451fbfb2d",
    },
}


def caffe2_test(dims: str) -> Spec:
    return {
        "commands": [
            "{program} --net {files.predict} --init_net {files.init} --warmup {warmup} "
            f"--iter {{iter}} --input data --input_dims {dims} --input_type float"
        ],
        "identifier": "{ID}",
        "iter": 50,
        "metric": "delay",
        "warmup": 1,
    }


def model_spec(**model: object) -> Spec:
    files = copy.deepcopy(CAFFE2_FILES)
    return {
        "model": {"name": "squeezenet", "format": "caffe2", "files": files, **model},
        "tests": [caffe2_test("1,3,30,30"), caffe2_test("64,3,30,30"), caffe2_test("1,3,224,224")],
    }


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def spec_error(path: Path, **kwargs: object) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load_cases(path, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_model_spec_gives_one_case_per_test_numbered_by_id(tmp_path: Path) -> None:
    cases = load_cases(write(tmp_path / "squeezenet.json", model_spec()))
    assert [case.identifier for case in cases] == ["0", "1", "2"]
    assert [case.index for case in cases] == [0, 1, 2]
    assert cases[0].framework == "caffe2"
    assert [ref.name for ref in cases[0].model_files] == ["init", "predict"]


def test_legacy_shapes_expand_into_cases_and_id_counts_after_expansion(tmp_path: Path) -> None:
    spec = {
        "model": {"name": "squeezenet", "format": "caffe2", "files": CAFFE2_FILES},
        "tests": [
            {
                "identifier": "{ID}",
                "metric": "error",
                "iter": 1,
                "warmup": 0,
                "input_files": {"data": "tests/test0/data.txt"},
                "output_files": {"softmaxout": "tests/test0/softmaxout.txt"},
                "inputs": {"data": {"shapes": [[1, 3, 224, 224]], "type": "float"}},
            },
            {
                "identifier": "{ID}",
                "metric": "delay",
                "iter": 50,
                "warmup": 1,
                "commands": {"caffe2": {"run_individual": "true"}},
                "inputs": {
                    "data": {
                        "shapes": [[1, 3, 30, 30], [64, 3, 30, 30], [1, 3, 224, 224]],
                        "type": "float",
                    }
                },
            },
        ],
    }
    cases = load_cases(write(tmp_path / "legacy.json", spec))
    assert [case.identifier for case in cases] == ["0", "1", "2", "3"]
    assert [case.test["inputs"]["data"]["shapes"] for case in cases[1:]] == [
        [[1, 3, 30, 30]],
        [[64, 3, 30, 30]],
        [[1, 3, 224, 224]],
    ]
    assert cases[1].test["framework_flags"] == {"caffe2": {"run_individual": "true"}}
    assert cases[1].commands == []
    assert cases[0].input_files[0].filename == "data.txt"
    assert cases[0].input_files[0].location == "tests/test0/data.txt"


def test_inputs_with_different_shape_counts_are_refused(tmp_path: Path) -> None:
    test = {
        "metric": "delay",
        "commands": ["x"],
        "inputs": {
            "a": {"shapes": [[1], [2]], "type": "float"},
            "b": {"shapes": [[1]], "type": "float"},
        },
    }
    path = write(tmp_path / "s.json", {"model": {"name": "m", "format": "onnx"}, "tests": [test]})
    error = spec_error(path)
    assert error.where == "tests[0].inputs.b.shapes"
    assert "expected 2 shape(s), as input 'a' lists, found 1" in str(error)


def test_legacy_command_and_arguments_become_command_lists(tmp_path: Path) -> None:
    spec = {
        "model": {"name": "m", "format": "generic"},
        "tests": [
            {"metric": "delay", "command": "run --fast"},
            {"metric": "delay", "arguments": "--iter {iter}"},
        ],
    }
    cases = load_cases(write(tmp_path / "s.json", spec))
    assert cases[0].commands == ["run --fast"]
    assert cases[1].commands == ["{program} --iter {iter}"]


def test_two_command_forms_in_one_test_are_refused(tmp_path: Path) -> None:
    spec = {
        "model": {"name": "m", "format": "generic"},
        "tests": [{"metric": "delay", "command": "a", "commands": ["b"]}],
    }
    error = spec_error(write(tmp_path / "s.json", spec))
    assert error.where == "tests[0]" and "'commands' and 'command'" in str(error)


def test_duplicate_json_key_names_the_key_and_its_path(tmp_path: Path) -> None:
    text = (
        '{"model": {"name": "m", "format": "tflite"}, "tests": [{"metric": "delay", '
        '"commands": ["{program} --graph={files.graph}"], '
        '"commands": {"tflite": {"num_threads": "4"}}}]}'
    )
    error = spec_error(write(tmp_path / "dup.json", text))
    assert error.path.endswith("dup.json")
    assert error.where == "tests[0]"
    assert "key 'commands' appears more than once" in str(error)


def test_duplicate_yaml_key_is_refused_with_its_line(tmp_path: Path) -> None:
    text = "model:\n  name: m\n  format: onnx\n  name: other\ntests:\n  - metric: delay\n"
    error = spec_error(write(tmp_path / "dup.yaml", text))
    assert "line 4" in str(error) and "'name' appears more than once" in str(error)


def test_yaml_spec_loads_like_json(tmp_path: Path) -> None:
    text = (
        "model:\n  name: mlp\n  format: onnx\n"
        "tests:\n  - identifier: '{ID}'\n    metric: delay\n    iter: 5\n"
    )
    cases = load_cases(write(tmp_path / "mlp.yml", text))
    assert cases[0].identifier == "0" and cases[0].framework == "onnxruntime"


SCHEMA_ERRORS: list[tuple[Mutation, str, str]] = [
    (
        lambda s: s["tests"][2].update(iter="50"),
        "tests[2].iter",
        'expected integer, found string "50"',
    ),
    (
        lambda s: s["model"].pop("name"),
        "model",
        "missing required field: expected a field 'name'",
    ),
    (
        lambda s: s["model"]["files"]["init"].update(md5="xyz"),
        "model.files.init.md5",
        "expected a string matching",
    ),
    (
        lambda s: s["tests"][1].update(inputs={"data": {"shapes": [["a", 3], 7]}}),
        "tests[1].inputs.data.shapes[1]",
        "expected array, found integer 7",
    ),
    (lambda s: s.update(tests=[]), "tests", "expected at least 1 item(s)"),
]


@pytest.mark.parametrize(("mutate", "where", "expected"), SCHEMA_ERRORS)
def test_schema_errors_name_the_json_path_expected_and_found(
    tmp_path: Path, mutate: Mutation, where: str, expected: str
) -> None:
    spec = model_spec()
    mutate(spec)
    error = spec_error(write(tmp_path / "bad.json", spec))
    assert error.where == where
    assert expected in error.problem


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    error = spec_error(write(tmp_path / "broken.json", '{"model": {"name": "m",}\n}'))
    assert error.where == "line 1 column 24"
    assert "not valid JSON" in str(error)


def test_a_file_that_is_no_spec_is_refused(tmp_path: Path) -> None:
    error = spec_error(write(tmp_path / "other.json", {"foo": 1}))
    assert "expected a model spec" in str(error) and "['foo']" in str(error)


@pytest.mark.parametrize(
    "filename", ["../escape.bin", "a/../../b", "/etc/passwd", "a\\b", "..", "."]
)
def test_a_filename_with_path_parts_is_refused_where_it_stands(
    tmp_path: Path, filename: str
) -> None:
    spec = model_spec()
    spec["model"]["files"]["init"]["filename"] = filename
    error = spec_error(write(tmp_path / "s.json", spec))
    assert error.where == "model.files.init.filename"
    assert "has path parts, and a filename is one name" in error.problem
    assert "put the folder in 'location'" in error.problem


def test_a_filename_with_characters_no_file_name_holds_loses_them(tmp_path: Path) -> None:
    spec = model_spec()
    spec["model"]["files"]["init"]["filename"] = "init\x00net?.pb"
    case = load_cases(write(tmp_path / "s.json", spec))[0]
    assert case.model_files[0].filename == "initnet.pb"


@pytest.mark.parametrize("filename", ["!!!", "***"])
def test_filenames_that_name_no_file_are_refused(tmp_path: Path, filename: str) -> None:
    spec = model_spec()
    spec["model"]["files"]["init"]["filename"] = filename
    error = spec_error(write(tmp_path / "s.json", spec))
    assert error.where == "model.files.init.filename"
    assert "cannot name a file or folder" in error.problem


def test_empty_md5_means_no_md5(tmp_path: Path) -> None:
    spec = model_spec()
    spec["model"]["files"]["init"]["md5"] = ""
    cases = load_cases(write(tmp_path / "s.json", spec))
    assert cases[0].model_files[0].md5 is None


def test_string_map_applies_to_every_string_before_validation(tmp_path: Path) -> None:
    spec = model_spec()
    spec["model"]["files"]["init"]["location"] = "{MODEL_DIR}/init_net.pb"
    spec["model"]["name"] = "{NAME}"
    cases = load_cases(
        write(tmp_path / "s.json", spec), string_map={"MODEL_DIR": "/models", "NAME": "sq"}
    )
    assert cases[0].model_files[0].location == "/models/init_net.pb"
    assert cases[0].name == "sq"


def test_benchmark_list_merges_meta_without_overwriting(tmp_path: Path) -> None:
    write(
        tmp_path / "models/a/a.json",
        {
            "model": {"name": "a", "format": "caffe2", "group": "mine"},
            "tests": [
                {"metric": "delay", "identifier": "{ID}", "commands": ["{program} x"]},
                {"metric": "delay", "identifier": "{ID}", "commands": ["prepare"]},
            ],
        },
    )
    write(
        tmp_path / "models/b/b.json",
        {
            "model": {"name": "b", "format": "caffe2", "extra": {"k": 1}},
            "tests": [{"metric": "delay", "identifier": "{ID}", "commands": ["{program} y"]}],
        },
    )
    listing = write(
        tmp_path / "benchmarks/list.json",
        {
            "meta": {"group": "CNN", "command_args": "--backend mkl", "extra": {"j": 2}},
            "benchmarks": ["../models/a/a.json", "../models/b/b.json"],
        },
    )
    cases = load_cases(listing)
    assert [(case.name, case.identifier) for case in cases] == [("a", "0"), ("a", "1"), ("b", "0")]
    assert cases[0].model["group"] == "mine"  # the model's own value wins
    assert cases[2].model["group"] == "CNN"
    assert cases[2].model["extra"] == {"k": 1, "j": 2}
    assert cases[0].commands == ["{program} x --backend mkl"]
    assert cases[1].commands == ["prepare"]  # command_args only join {program} commands
    assert all(case.source == listing for case in cases)
    assert cases[2].spec_path == tmp_path / "benchmarks/../models/b/b.json"


def test_benchmark_list_with_a_missing_model_names_the_entry(tmp_path: Path) -> None:
    listing = write(tmp_path / "list.json", {"meta": {}, "benchmarks": ["nope.json"]})
    error = spec_error(listing)
    assert error.where == "benchmarks[0]" and "found nothing there" in str(error)


def test_identifier_may_name_test_fields(tmp_path: Path) -> None:
    spec = {
        "model": {"name": "m", "format": "generic"},
        "tests": [
            {"metric": "delay", "identifier": "t{threads}-{ID}", "threads": 4, "commands": ["x"]}
        ],
    }
    assert load_cases(write(tmp_path / "s.json", spec))[0].identifier == "t4-0"


# Values on which JSON Schema drafts and validators are known to differ.
EDGE_VALUES: list[Mutation] = [
    lambda s: s["tests"][0].update(iter=5.0),
    lambda s: s["tests"][0].update(iter=True),
    lambda s: s["tests"][0].update(iter=-1),
    lambda s: s["model"].update(name=""),
    lambda s: s["model"]["files"]["init"].update(md5="A" * 32),
    lambda s: s["tests"][0].update(unknown_field=1),
    lambda s: s.update(extra_top_level=1),
]


def _mutated(mutate: Mutation) -> Spec:
    spec = model_spec()
    mutate(spec)
    return spec


@pytest.mark.parametrize(
    "spec",
    [
        model_spec(),
        *(_mutated(mutate) for mutate, _, _ in SCHEMA_ERRORS),
        *(_mutated(mutate) for mutate in EDGE_VALUES),
        *(
            json.loads(path.read_text())
            for path in sorted((ROOT / "specifications/models").rglob("*.json"))
        ),
    ],
)
def test_the_fast_check_and_jsonschema_agree(spec: Spec) -> None:
    from pytest_aibench.spec.validate import MODEL_SPEC, _validator, conforms

    assert conforms(spec, MODEL_SPEC) == _validator(MODEL_SPEC).is_valid(spec)
