"""Generative models: onnxruntime-genai in process on decoders made by
specifications/models/make_decoder.py (the repository's and others of other sizes), golden
tokens, the generation metrics' definitions and directions, and their verdicts."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest import Pytester

from pytest_aibench.generation import DEFINITIONS, first_divergence
from pytest_aibench.records import MetricDict
from pytest_aibench.reporting.terminal import write_agreement
from pytest_aibench.verdicts.agreement import agree
from pytest_aibench.verdicts.gate import compare_items
from pytest_aibench.verdicts.rules import Tolerance

from .helpers import metrics_of, write_json, written_run

ROOT = Path(__file__).resolve().parents[1]
DECODER = ROOT / "specifications/models/genai/decoder"
FIGURES = ("time_to_first_token", "prefill_latency", "prefill_speed", "decode_speed")


def needs_genai() -> None:
    if importlib.util.find_spec("onnxruntime_genai") is None:
        pytest.skip("onnxruntime-genai is not installed: pip install 'pytest-aibench[genai]'")


def test_the_repository_decoders_give_every_figure_and_agree_across_frameworks(
    pytester: Pytester,
) -> None:
    needs_genai()
    needs_executorch_llm()
    result = pytester.runpytest(
        f"--aibench-spec={ROOT / 'specifications'}",
        "-m",
        "generation",
        "--aibench-reference=genai",
        "--aibench-json=run.json",
        "--aibench-html=report.html",
    )
    result.assert_outcomes(passed=3)
    report = (pytester.path / "report.html").read_text()
    assert "NET decode_speed" in report and "tokens/s" in report
    items = {
        (item["case"]["framework"], item["case"]["identifier"]): item  # type: ignore[index]
        for item in written_run(pytester.path)["items"]
    }
    golden, deep = items["genai", "greedy-golden"], items["genai", "prompt-128-depth-256"]
    for item in (golden, deep):
        metrics = metrics_of(item)
        for name in FIGURES:
            record = metrics[f"NET {name}"]
            assert len(record["values"]) == 10, name  # one per timed generation
            assert record["definition"] == DEFINITIONS[name].text
            assert record["direction"] == DEFINITIONS[name].direction
        assert len(metrics["NET load"]["values"]) == 1
        assert len(metrics["NET peak_memory"]["values"]) == 1
    assert len(metrics_of(golden)["NET token_latency"]["values"]) == 10 * 15  # after the first
    expected = json.loads((DECODER / "tokens.json").read_text())
    assert golden["extra"]["generation"]["tokens"] == expected
    depths = deep["extra"]["generation"]
    assert (depths["prompt_tokens"], depths["context_depth"]) == (128, 256)
    # the same network in ExecuTorch's LLM runner: its own definitions, the same tokens
    executorch = items["executorch", "greedy-golden"]
    metrics = metrics_of(executorch)
    for name in FIGURES:
        assert len(metrics[f"NET {name}"]["values"]) == 10, name
    assert "tokenizing the prompt" in metrics["NET time_to_first_token"]["definition"]
    assert "its echo of the prompt" in metrics["NET prefill_latency"]["definition"]
    assert executorch["extra"]["generation"]["tokens"] == expected
    assert metrics["tokens vs genai first_divergence"]["values"] == [16.0]  # all agree
    result.stdout.fnmatch_lines(
        [
            "*decoder[[]greedy-golden-host[]]*NET decode_speed*tokens/s",
            "*network*reference*executorch*genai*",
            "decoder[[]greedy-golden[]]*genai*tokens agree*reference*",
        ]
    )


def needs_executorch_llm() -> None:
    if importlib.util.find_spec("executorch") is None:
        pytest.skip("executorch is not installed: pip install 'pytest-aibench[executorch]'")


def make_decoder(folder: Path, *sizes: str) -> Path:
    script = ROOT / "specifications/models/make_decoder.py"
    made = subprocess.run(
        [sys.executable, str(script), "--out", str(folder), *sizes],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    return folder


def decoder_spec(folder: Path, **generation: int) -> dict[str, Any]:
    files = {
        "config": {"filename": "genai_config.json", "location": "genai_config.json"},
        "model": {"filename": "model.onnx", "location": "model.onnx"},
    }
    return {
        "model": {"name": folder.name, "format": "genai", "files": files},
        "tests": [
            {
                "identifier": "greedy",
                "metric": "generation",
                "warmup": 1,
                "iter": 5,
                "generation": generation,
                "input_files": {"prompt": {"filename": "prompt.json", "location": "prompt.json"}},
                "golden_files": {"tokens": {"filename": "tokens.json", "location": "tokens.json"}},
            }
        ],
    }


@pytest.mark.parametrize(
    "sizes", [["--layers", "3", "--hidden", "32", "--heads", "2"], ["--vocab", "1000"]]
)
def test_a_decoder_of_other_sizes_generates_its_golden_tokens(
    pytester: Pytester, sizes: list[str]
) -> None:
    needs_genai()
    make_decoder(pytester.path, *sizes)
    write_json(pytester.path / "d.json", decoder_spec(pytester.path, new_tokens=16))
    result = pytester.runpytest("--aibench-spec=d.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    (item,) = written_run(pytester.path)["items"]
    assert item["extra"]["generation"]["tokens"] == json.loads(
        (pytester.path / "tokens.json").read_text()
    )
    assert len(metrics_of(item)["NET decode_speed"]["values"]) == 5


def test_generation_leaving_the_golden_tokens_fails_where_it_leaves(pytester: Pytester) -> None:
    needs_genai()
    make_decoder(pytester.path)
    golden = json.loads((pytester.path / "tokens.json").read_text())
    golden[3] = (golden[3] + 1) % 255
    (pytester.path / "tokens.json").write_text(json.dumps(golden))
    write_json(pytester.path / "d.json", decoder_spec(pytester.path, new_tokens=16))
    result = pytester.runpytest("--aibench-spec=d.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*token 3 of 16 differs from the golden tokens: expected*"])


def test_the_first_divergence_is_said_with_its_position() -> None:
    assert first_divergence([1, 2, 3], [1, 2, 3, 4]) is None
    assert first_divergence([1, 2, 3], [1, 5, 3]) == (
        "token 1 of 3 differs from the golden tokens: expected 2, generated 5 "
        "(the 1 before it agree)"
    )
    assert first_divergence([1, 2, 3], [1, 2]) == "generated 2 tokens, the golden file has 3"


def metric(name: str, values: list[float]) -> MetricDict:
    definition = DEFINITIONS[name]
    return {
        "type": "NET",
        "metric": name,
        "unit": definition.unit,
        "values": values,
        "num_runs": len(values),
        "summary": {},
        "summary_source": "samples",
        "info_string": None,
        "direction": definition.direction,
    }


def test_fewer_tokens_per_second_is_a_regression_and_more_an_improvement() -> None:
    control = [metric("decode_speed", [1000.0 + i for i in range(10)])]
    slower = [metric("decode_speed", [800.0 + i for i in range(10)])]
    faster = [metric("decode_speed", [1200.0 + i for i in range(10)])]
    [worse] = compare_items(control, slower, [], 0.02, 0.05)
    [better] = compare_items(control, faster, [], 0.02, 0.05)
    assert (worse.status, better.status) == ("regressed", "improved")


def test_each_definition_is_written_once_in_the_docs() -> None:
    docs = " ".join((ROOT / "docs/generation.md").read_text().split())
    for name, definition in DEFINITIONS.items():
        assert (
            f"`{name}` ({definition.unit}, {definition.direction} is better): {definition.text}"
            in docs
        )


DATA = Path(__file__).parent / "data"


def printed_output_spec(pytester: Pytester, recorded: str) -> None:
    """A generation test whose command prints a program's recorded output (files written in
    llama-bench's and ExecuTorch's LLM runner's formats, as their sources print them)."""
    (pytester.path / recorded).write_bytes((DATA / recorded).read_bytes())
    spec = {
        "model": {
            "name": "llm",
            "format": "generic",
            "files": {"recorded": {"filename": recorded, "location": recorded}},
        },
        "tests": [
            {"identifier": "bench", "metric": "generation", "commands": ["cat {files.recorded}"]}
        ],
    }
    write_json(pytester.path / "llm.json", spec)


@pytest.mark.parametrize("recorded", ["llama_bench.json", "llama_bench.jsonl"])
def test_llama_bench_results_keep_every_repetition_with_its_settings(
    pytester: Pytester, recorded: str
) -> None:
    printed_output_spec(pytester, recorded)
    result = pytester.runpytest("--aibench-spec=llm.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    (item,) = written_run(pytester.path)["items"]
    metrics = metrics_of(item)
    prompt = metrics["pp512 prefill_speed"]
    assert prompt["unit"] == "tokens/s" and prompt["direction"] == "higher"
    assert prompt["values"][0] == pytest.approx(512 * 1e9 / 2815461208)
    assert len(prompt["values"]) == 5 and "llama-bench pp" in prompt["definition"]
    assert metrics["pp512 prefill_latency"]["values"][0] == pytest.approx(2815461.208)
    generation = metrics["tg128 decode_speed"]
    assert generation["values"][1] == pytest.approx(128 * 1e9 / 4087651920)
    assert len(metrics["pp512@d1024 prefill_speed"]["values"]) == 5
    settings = item["extra"]["llama_bench"]
    assert [s["test"] for s in settings] == ["pp512", "tg128", "pp512@d1024"]
    assert settings[0]["build_commit"] == "b1f8af18" and settings[0]["n_threads"] == 2
    result.stdout.fnmatch_lines(["*tg128 decode_speed*tokens/s"])


def test_llama_bench_csv_gives_its_means_as_the_tools_summary(pytester: Pytester) -> None:
    printed_output_spec(pytester, "llama_bench.csv")
    result = pytester.runpytest("--aibench-spec=llm.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    (item,) = written_run(pytester.path)["items"]
    speed = metrics_of(item)["tg128 decode_speed"]
    assert speed["values"] == [] and speed["summary_source"] == "tool"
    assert speed["summary"]["mean"] == pytest.approx(31.194556)


def test_executorch_llm_stats_lines_give_each_generation_in_our_figures(
    pytester: Pytester,
) -> None:
    printed_output_spec(pytester, "executorch_llm.txt")
    result = pytester.runpytest("--aibench-spec=llm.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    (item,) = written_run(pytester.path)["items"]
    metrics = metrics_of(item)
    assert metrics["NET time_to_first_token"]["values"] == [48000.0, 46000.0]
    assert "tokenized" in metrics["NET time_to_first_token"]["definition"]
    assert metrics["NET decode_speed"]["values"] == pytest.approx([19 / 0.648, 19 / 0.638])
    assert metrics["NET decode_speed"]["definition"] == DEFINITIONS["decode_speed"].text
    assert metrics["NET prefill_speed"]["values"] == pytest.approx([6 / 0.048, 6 / 0.046])
    assert metrics["NET load"]["values"] == [1202000.0]  # the second generation loaded nothing


def test_ab_judges_a_decoder_with_more_layers_a_slowdown(pytester: Pytester) -> None:
    needs_genai()
    make_decoder(pytester.path, "--layers", "6", "--hidden", "128")
    make_decoder(pytester.path / "base", "--layers", "2", "--hidden", "128")
    write_json(pytester.path / "d.json", decoder_spec(pytester.path, new_tokens=16))
    result = pytester.runpytest(
        "--aibench-spec=d.json",
        "--aibench-ab-control-root=base",
        "--aibench-ab-min-effect=10%",
        "--aibench-json=run.json",
    )
    result.assert_outcomes(failed=1)
    (item,) = written_run(pytester.path)["items"]
    verdicts = {v["key"]: v["status"] for v in item["verdicts"]}
    assert verdicts["NET decode_speed"] == "regressed"  # fewer tokens per second
    assert verdicts["NET time_to_first_token"] == "regressed"
    assert item["extra"]["ab"]["sides"]["control"]["threads"] >= 1
    [speed] = [v for v in item["verdicts"] if v["key"] == "NET decode_speed"]
    assert speed["detectable"] is not None and speed["detectable"] < 0  # a drop in tokens/s
    result.stdout.fnmatch_lines(["*NET decode_speed p50 regressed*-*% or more caught 9 times*"])


def test_listed_lengths_make_an_item_each_named_by_them(pytester: Pytester) -> None:
    spec = decoder_spec(pytester.path, new_tokens=16)
    spec["tests"][0]["generation"] = {
        "prompt_tokens": [16, 64],
        "new_tokens": 8,
        "context_depth": [0, 128],
    }
    write_json(pytester.path / "d.json", spec)
    result = pytester.runpytest("--aibench-spec=d.json", "--collect-only", "-q", "-m", "generation")
    result.stdout.fnmatch_lines(
        [
            "d.json::*[[]greedy-p16-d0-host[]]",
            "d.json::*[[]greedy-p16-d128-host[]]",
            "d.json::*[[]greedy-p64-d0-host[]]",
            "d.json::*[[]greedy-p64-d128-host[]]",
            "*4 tests collected*",
        ]
    )


def generation_item(framework: str) -> Any:
    case = {"model": "decoder", "identifier": "greedy", "framework": framework}
    return {"nodeid": f"{framework}.json::decoder", "case": case, "device": {"hash": "vm"}}


class Lines:
    """Stands in for pytest's terminal writer: keeps the lines written."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_sep(self, sep: str, title: str) -> None:
        self.lines.append(title)

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def test_the_agreement_of_generated_tokens_is_where_they_first_differ() -> None:
    tokens = {"genai": [5, 6, 7, 8], "numpy": [5, 6, 7, 8], "other": [5, 6, 9, 8]}
    items = [generation_item(name) | {"metrics": []} for name in tokens]

    def outputs(item: Any) -> dict[str, Any]:
        return {"tokens": np.array(tokens[item["case"]["framework"]], dtype=np.int64)}

    [row] = agree(items, "genai", Tolerance(), outputs)
    assert row.divergence == {"numpy": None, "other": 2}
    assert row.beyond == {"other"}
    recorded = {m["type"]: m["values"] for m in items[2]["metrics"]}
    assert recorded == {"tokens vs genai": [2.0]}
    terminal = Lines()
    write_agreement(terminal, [row])  # type: ignore[arg-type]
    assert "tokens agree" in terminal.lines[-1] and "token 2 differs*" in terminal.lines[-1]


@pytest.mark.parametrize("form", ["genai", "executorch"])
def test_make_decoder_writes_the_repository_files_byte_for_byte(tmp_path: Path, form: str) -> None:
    if form == "executorch":
        needs_executorch_llm()
    make_decoder(tmp_path, *(["--executorch"] if form == "executorch" else []))
    committed = ROOT / "specifications/models" / form / "decoder"
    for made in tmp_path.iterdir():
        assert made.read_bytes() == (committed / made.name).read_bytes(), made.name
