"""Language-model benchmark programs' output → generation metric records. Pure.

llama.cpp's ``llama-bench`` (``-o json``, ``-o jsonl``, ``-o csv``): one entry per test, a test
being prompt processing (``n_prompt`` tokens, ``n_gen`` 0: "pp512"), generation (``n_gen``
tokens one at a time after no prompt: "tg128") or both ("pp512+tg128"), each after ``n_depth``
tokens of context ("@ d512"). JSON and JSONL keep every repetition (``samples_ns``, and
``samples_ts`` = tokens x 1e9 / ns); CSV only the mean and standard deviation, kept as the
tool's summary. Tokenizing and sampling are in none of them.

ExecuTorch's LLM runner: a ``PyTorchObserver {...}`` line per generation with millisecond
timestamps (``model_load_start_ms``, ``model_load_end_ms``, ``inference_start_ms``,
``prompt_eval_end_ms``, ``first_token_ms``, ``inference_end_ms``) and token counts; its
inference starts before the prompt is tokenized, so its time to first token and prefill include
tokenizing. Millisecond resolution: a figure under a few ms is coarse.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..generation import generation_metric
from ..metrics import MetricRecord

# what llama-bench says of each build, model and setting, kept with its results
LLAMA_BENCH_SETTINGS = (
    "build_commit",
    "build_number",
    "backends",
    "cpu_info",
    "gpu_info",
    "model_filename",
    "model_type",
    "model_size",
    "model_n_params",
    "n_threads",
    "n_batch",
    "n_ubatch",
    "n_gpu_layers",
    "type_k",
    "type_v",
    "flash_attn",
)

LLAMA_BENCH_DEFINITIONS = {
    "prefill_speed": "llama-bench pp: prompt tokens / the time to process them in batches "
    "(no tokenizing, no sampling)",
    "prefill_latency": "llama-bench pp: the time to process the prompt in batches",
    "decode_speed": "llama-bench tg: tokens generated one at a time / their time, every token "
    "counted, no prompt before them (no sampling)",
    "decode_latency": "llama-bench tg: the time to generate the test's tokens one at a time",
    "combined_speed": "llama-bench pp+tg: (prompt + generated tokens) / the time to process the "
    "prompt and then generate",
}

EXECUTORCH_LLM_DEFINITIONS = {
    "time_to_first_token": "ExecuTorch's LLM runner: from the start of inference (before the "
    "prompt is tokenized) to the first generated token; 1 ms resolution",
    "prefill_latency": "ExecuTorch's LLM runner: from the start of inference to the end of the "
    "prompt's evaluation, tokenizing included; 1 ms resolution",
}


@dataclass
class LlmOutput:
    records: list[MetricRecord] = field(default_factory=list)
    settings: list[dict[str, Any]] = field(default_factory=list)  # per llama-bench test


def parse_llama_bench(text: str) -> LlmOutput | None:
    """llama-bench's results in any of its machine formats, or None when ``text`` holds none."""
    entries = _llama_bench_entries(text)
    if not entries:
        return None
    output = LlmOutput()
    for entry in entries:
        name = _test_name(entry)
        output.settings.append(
            {"test": name, **{key: entry[key] for key in LLAMA_BENCH_SETTINGS if key in entry}}
        )
        output.records += _llama_bench_records(name, entry)
    return output


def _llama_bench_entries(text: str) -> list[dict[str, Any]]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except ValueError:
            return []
        return [entry for entry in data if _is_llama_bench(entry)]
    entries = []
    for line in stripped.splitlines():
        if line.lstrip().startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if _is_llama_bench(entry):
                entries.append(entry)
    if entries:
        return entries
    if stripped.startswith("build_commit,"):
        return [_typed(row) for row in csv.DictReader(io.StringIO(stripped))]
    return []


def _is_llama_bench(entry: Any) -> bool:
    return isinstance(entry, dict) and {"n_prompt", "n_gen", "avg_ns"} <= set(entry)


def _typed(row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row with llama-bench's numbers as numbers."""
    typed: dict[str, Any] = dict(row)
    for key in ("n_prompt", "n_gen", "n_depth", "avg_ns", "stddev_ns", "n_threads", "n_batch"):
        if row.get(key, "") != "":
            typed[key] = int(row[key])
    for key in ("avg_ts", "stddev_ts"):
        if row.get(key, "") != "":
            typed[key] = float(row[key])
    return typed


def _test_name(entry: Mapping[str, Any]) -> str:
    """llama-bench's own name of a test: pp512, tg128, pp512+tg128, with @ d512 for depth."""
    prompt, generated = int(entry["n_prompt"]), int(entry["n_gen"])
    parts = ([f"pp{prompt}"] if prompt else []) + ([f"tg{generated}"] if generated else [])
    depth = int(entry.get("n_depth") or 0)
    return "+".join(parts) + (f"@d{depth}" if depth else "")


def _llama_bench_records(name: str, entry: Mapping[str, Any]) -> list[MetricRecord]:
    prompt, generated = int(entry["n_prompt"]), int(entry["n_gen"])
    speed, latency = (
        ("prefill_speed", "prefill_latency")
        if not generated
        else ("decode_speed", "decode_latency")
        if not prompt
        else ("combined_speed", None)
    )
    nanoseconds = [float(value) for value in entry.get("samples_ns") or []]
    tokens = prompt + generated
    if nanoseconds:
        speeds = [tokens * 1e9 / value for value in nanoseconds if value > 0]
        times: list[float] = [value / 1000.0 for value in nanoseconds]
        found = [_llama_bench_record(name, speed, speeds)]
        if latency:
            found.append(_llama_bench_record(name, latency, times))
        return found
    summary = {"mean": float(entry["avg_ts"]), "stdev": float(entry["stddev_ts"]), "p50": None}
    record = _llama_bench_record(name, speed, [])
    record.summary = summary
    return [record]


def _llama_bench_record(name: str, metric: str, values: list[float]) -> MetricRecord:
    definition = LLAMA_BENCH_DEFINITIONS[metric]
    if metric.endswith("latency"):
        return MetricRecord(name, metric, "us", values, direction="lower", definition=definition)
    return MetricRecord(name, metric, "tokens/s", values, direction="higher", definition=definition)


def parse_executorch_llm(lines: Iterable[str], prefixes: Iterable[str]) -> list[MetricRecord]:
    """The generation figures of each ``PyTorchObserver {...}`` stats line ExecuTorch's LLM
    runner printed; empty when it printed none."""
    records: list[MetricRecord] = []
    for stats in _stats_lines(lines, tuple(prefixes)):
        records += _executorch_llm_records(stats)
    return records


def _stats_lines(lines: Iterable[str], prefixes: tuple[str, ...]) -> Iterable[dict[str, Any]]:
    for line in lines:
        for prefix in prefixes:
            marker = prefix.strip()  # the observers' prefixes end with the space before {
            start = line.find(marker + " {")
            if start < 0:
                continue
            try:
                data = json.loads(line[start + len(marker) :])
            except ValueError:
                continue
            if isinstance(data, dict) and {"generated_tokens", "inference_start_ms"} <= set(data):
                yield data


def _executorch_llm_records(stats: Mapping[str, Any]) -> list[MetricRecord]:
    us_per_unit = 1e6 / float(stats.get("SCALING_FACTOR_UNITS_PER_SECOND", 1000))

    def span(start: str, end: str) -> float:
        return (float(stats[end]) - float(stats[start])) * us_per_unit

    prompt, generated = int(stats["prompt_tokens"]), int(stats["generated_tokens"])
    prefill = span("inference_start_ms", "prompt_eval_end_ms")
    found = [
        generation_metric("time_to_first_token", [span("inference_start_ms", "first_token_ms")]),
        generation_metric("prefill_latency", [prefill]),
    ]
    for record in found:
        record.definition = EXECUTORCH_LLM_DEFINITIONS[record.metric]
    if prefill > 0:
        speed = generation_metric("prefill_speed", [prompt / (prefill / 1e6)])
        speed.definition = "prompt tokens / prefill_latency as ExecuTorch's LLM runner counts it"
        found.append(speed)
    decoding = span("first_token_ms", "inference_end_ms")
    if generated > 1 and decoding > 0:
        found.append(generation_metric("decode_speed", [(generated - 1) / (decoding / 1e6)]))
    load = span("model_load_start_ms", "model_load_end_ms")
    if load > 0:
        found.append(MetricRecord("NET", "load", "us", [load]))
    return found
