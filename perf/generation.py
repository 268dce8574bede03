#!/usr/bin/env python3
"""Generation figures under pytest-aibench beside a bare onnxruntime-genai loop, and the spread
of the first timed generations with and without warm-up, in one run.

The model: make_decoder.py's random decoder with --layers 4 --hidden 256 --heads 8 --vocab
4096 (a prompt of 64 token ids, 64 new tokens). Bias, per round, each in a fresh process: a
spec item (WARMUP untimed generations, then RUNS timed; p50 of time to first token and decode
tokens/s) and a bare loop of the same calls timed the same way, the way onnxruntime-genai's own
benchmark script times them (warm-ups, then repetitions), p50 too; which of the two runs
first alternates from round to round. Warm-up: in fresh
processes, the first timed generations of items with no warm-up and with WARMUP warm-ups: the
spread (interquartile range / median) of time to first token. Needs the genai extra. Nothing
is asserted.

    python perf/generation.py [--rounds 3] [--processes 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIZES = ["--layers", "4", "--hidden", "256", "--heads", "8", "--vocab", "4096"]
PROMPT, NEW = 64, 64
RUNS, WARMUP = 20, 3

BARE_LOOP = """
import json, statistics, sys, time
import numpy as np
import onnxruntime_genai as og
folder, prompt_tokens, new_tokens, runs, warmup = sys.argv[1], *map(int, sys.argv[2:])
model = og.Model(folder)
prompt = [int(t) for t in np.random.default_rng(0).integers(1, 4095, prompt_tokens)]
ttft, decode = [], []
for repetition in range(warmup + runs):
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=prompt_tokens + new_tokens, do_sample=False)
    generator = og.Generator(model, params)
    start = time.perf_counter_ns()
    generator.append_tokens(prompt)
    generator.generate_next_token()
    generator.get_next_tokens()
    first = time.perf_counter_ns()
    for _ in range(new_tokens - 1):
        generator.generate_next_token()
        generator.get_next_tokens()
    end = time.perf_counter_ns()
    if repetition >= warmup:
        ttft.append((first - start) / 1000)
        decode.append((new_tokens - 1) / ((end - first) / 1e9))
print(json.dumps({"ttft": statistics.median(ttft), "decode": statistics.median(decode)}))
"""


def spec(warmup: int, runs: int) -> dict[str, Any]:
    files = {
        "config": {"filename": "genai_config.json", "location": "genai_config.json"},
        "model": {"filename": "model.onnx", "location": "model.onnx"},
    }
    test = {
        "identifier": "t",
        "metric": "generation",
        "warmup": warmup,
        "iter": runs,
        "generation": {"prompt_tokens": PROMPT, "new_tokens": NEW},
    }
    return {"model": {"name": "decoder", "format": "genai", "files": files}, "tests": [test]}


def prepare(folder: Path) -> None:
    script = ROOT / "specifications/models/make_decoder.py"
    command = [sys.executable, str(script), "--out", str(folder), *SIZES]
    subprocess.run(command, check=True, capture_output=True)
    (folder / "bare_loop.py").write_text(BARE_LOOP)
    (folder / "pytest.ini").write_text("[pytest]\n")


def aibench(folder: Path, warmup: int, runs: int) -> dict[str, list[float]]:
    (folder / "spec.json").write_text(json.dumps(spec(warmup, runs)))
    options = ["--aibench-spec=spec.json", "--aibench-json=run.json", "-p", "no:benchmark"]
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    [item] = json.loads((folder / "run.json").read_text())["items"]
    return {m["metric"]: m["values"] for m in item["metrics"]}


def bare(folder: Path) -> dict[str, float]:
    sizes = [str(number) for number in (PROMPT, NEW, RUNS, WARMUP)]
    ran = subprocess.run(
        [sys.executable, "bare_loop.py", str(folder), *sizes],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    )
    medians: dict[str, float] = json.loads(ran.stdout.splitlines()[-1])
    return medians


def bias(folder: Path, rounds: int) -> None:
    print(
        f"{'round':>5}  {'aibench TTFT us':>15}  {'bare TTFT us':>12}  "
        f"{'aibench decode tok/s':>20}  {'bare decode tok/s':>17}"
    )
    for index in range(1, rounds + 1):
        if index % 2:  # which runs first alternates: the second process of a pair may differ
            ours, loop = aibench(folder, WARMUP, RUNS), bare(folder)
        else:
            loop, ours = bare(folder), aibench(folder, WARMUP, RUNS)
        ttft = statistics.median(ours["time_to_first_token"])
        decode = statistics.median(ours["decode_speed"])
        print(
            f"{index:>5}  {ttft:>15.1f}  {loop['ttft']:>12.1f}  {decode:>20.1f}  "
            f"{loop['decode']:>17.1f}"
        )


def spread(values: list[float]) -> float:
    low, _, high = statistics.quantiles(values, n=4)
    return (high - low) / statistics.median(values)


def warmup_spread(folder: Path, processes: int) -> None:
    print(f"\n{'warm-up':>7}  {'TTFT p50 us':>11}  {'TTFT IQR/p50':>12}  {'first TTFT us':>13}")
    for warmup in (0, WARMUP):
        samples: list[float] = []
        firsts: list[float] = []
        for _ in range(processes):
            ttft = aibench(folder, warmup, 5)["time_to_first_token"]
            samples += ttft
            firsts.append(ttft[0])
        print(
            f"{warmup:>7}  {statistics.median(samples):>11.1f}  {spread(samples):>12.1%}  "
            f"{statistics.median(firsts):>13.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        prepare(folder)
        bias(folder, options.rounds)
        warmup_spread(folder, options.processes)


if __name__ == "__main__":
    main()
