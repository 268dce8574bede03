#!/usr/bin/env python3
"""ExecuTorch under pytest-aibench: timing bias against a bare ``Runtime`` loop and
pytest-benchmark, and one network across frameworks, in one run.

Programs: the repository's MLP (``mlp.pte``, ``mlp_xnnpack.pte``, 1 x 64) and MLPerf Tiny's
keyword-spotting DS-CNN as ExecuTorch's own wheel defines it (1 x 1 x 49 x 10; seeded,
untrained weights, batch norm's statistics from random batches), written by
specifications/models/make_kws.py with and without XNNPACK, and also as a ``torch.export``
archive and an ONNX file.

Timing bias, per round and program, each in a fresh process: a spec item (RUNS timed
``execute`` calls after WARMUP, p50 of the raw samples), a pytest-benchmark test of the same
``method.execute`` call (its median), and a bare ``perf_counter_ns`` loop over the same call
(p50). Frameworks: the DS-CNN in each form as a spec item, all in one pytest run, default
threads everywhere (p50, golden error against eager PyTorch). Needs the executorch, onnx,
pytorch and test extras. Nothing is asserted.

--threads N sets ExecuTorch's threadpool (XNNPACK's threads) to N in all three ways of timing;
by default each keeps the runtime's own (one per core).

    python perf/executorch.py [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

MODELS = Path(__file__).resolve().parents[1] / "specifications/models"
RUNS, WARMUP = 2000, 100

FORMS_MADE = ("executorch", "export", "onnx")  # make_kws.py's forms

# program file -> its input file; the same inputs for every way of timing it
PROGRAMS = {
    "mlp.pte": "mlp_x.npy",
    "mlp_xnnpack.pte": "mlp_x.npy",
    "kws.pte": "kws_x.npy",
    "kws_xnnpack.pte": "kws_x.npy",
}
FORMATS = {
    "kws.pte": "executorch",
    "kws_xnnpack.pte": "executorch",
    "kws.pt2": "pytorch",
    "kws.onnx": "onnx",
}

BARE_LOOP = f"""
import json, statistics, sys, time
import numpy as np, torch
from executorch.runtime import Runtime
medians = {{}}
for program, inputs in {PROGRAMS!r}.items():
    method = Runtime.get().load_program(program).load_method("forward")
    tensors = [torch.from_numpy(np.load(inputs))]
    for _ in range({WARMUP}):
        method.execute(tensors)
    samples = []
    for _ in range({RUNS}):
        start = time.perf_counter_ns()
        method.execute(tensors)
        samples.append((time.perf_counter_ns() - start) / 1000)
    medians[program] = statistics.median(samples)
print(json.dumps(medians))
"""

PEER_TEST = f"""
import numpy as np, pytest, torch
from executorch.runtime import Runtime

@pytest.mark.parametrize("program", {list(PROGRAMS)!r})
def test_execute(benchmark, program):
    method = Runtime.get().load_program(program).load_method("forward")
    tensors = [torch.from_numpy(np.load({PROGRAMS!r}[program]))]
    benchmark(method.execute, tensors)
"""


def spec(
    program: str, fmt: str, inputs: str, golden: str | None = None, threads: int = 0
) -> dict[str, object]:
    test: dict[str, object] = {
        "identifier": "t",
        "metric": "delay",
        "warmup": WARMUP,
        "iter": RUNS,
        "input_files": {"x": {"filename": inputs, "location": inputs}},
    }
    if threads:
        test["executorch"] = {"num_threads": threads}
    if golden:
        test["golden_files"] = {"y": {"filename": golden, "location": golden}}
        test["tolerance"] = {"atol": 1e-4}
    files = {"model": {"filename": program, "location": program}}
    return {"model": {"name": program, "format": fmt, "files": files}, "tests": [test]}


def prepare(folder: Path, threads: int) -> None:
    made = folder / "kws"
    command = [sys.executable, str(MODELS / "make_kws.py"), "--out", str(made), "--forms"]
    subprocess.run([*command, *FORMS_MADE], check=True, capture_output=True)
    for name in ("kws.pte", "kws_xnnpack.pte", "kws.pt2", "kws.onnx"):
        shutil.copy(made / name, folder / name)
    shutil.copy(made / "x.npy", folder / "kws_x.npy")
    shutil.copy(made / "y.npy", folder / "kws_y.npy")
    for name in ("mlp.pte", "mlp_xnnpack.pte"):
        shutil.copy(MODELS / "executorch/mlp" / name, folder / name)
    shutil.copy(MODELS / "golden/mlp/x.npy", folder / "mlp_x.npy")
    for program, inputs in PROGRAMS.items():
        timed = spec(program, "executorch", inputs, threads=threads)
        write(folder / f"bias_{Path(program).stem}.json", timed)
    for program, fmt in FORMATS.items():
        golden = spec(program, fmt, "kws_x.npy", "kws_y.npy")
        write(folder / f"frameworks_{program.replace('.', '_')}.json", golden)
    (folder / "test_peer.py").write_text(threads_set(threads) + PEER_TEST)
    (folder / "bare_loop.py").write_text(threads_set(threads) + BARE_LOOP)
    (folder / "pytest.ini").write_text("[pytest]\n")


def threads_set(threads: int) -> str:
    """The start of a script that times ``execute``: ExecuTorch's warnings off, its threadpool
    set to ``threads`` when asked."""
    text = "import warnings\nwarnings.simplefilter('ignore')\n"
    if threads:
        text += "from executorch.extension.pybindings import portable_lib\n"
        text += f"portable_lib._unsafe_reset_threadpool({threads})\n"
    return text


def write(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=1))


def pytest_run(folder: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )


def aibench_items(folder: Path, pattern: str) -> list[dict[str, Any]]:
    specs = [f"--aibench-spec={path.name}" for path in sorted(folder.glob(pattern))]
    pytest_run(folder, *specs, "--aibench-json=run.json", "-p", "no:benchmark")
    items: list[dict[str, Any]] = json.loads((folder / "run.json").read_text())["items"]
    return items


def metrics(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{m['type']} {m['metric']}": m for m in item["metrics"]}


def program_of(item: dict[str, Any]) -> str:
    return str(item["case"]["model"])


def aibench_medians(folder: Path) -> dict[str, float]:
    return {
        program_of(item): float(metrics(item)["NET latency"]["summary"]["p50"])
        for item in aibench_items(folder, "bias_*.json")
    }


def peer_medians(folder: Path) -> dict[str, float]:
    pytest_run(folder, "test_peer.py", "--benchmark-json=peer.json", "-p", "no:aibench")
    benchmarks = json.loads((folder / "peer.json").read_text())["benchmarks"]
    return {bench["param"]: bench["stats"]["median"] * 1e6 for bench in benchmarks}


def loop_medians(folder: Path) -> dict[str, float]:
    ran = subprocess.run(
        [sys.executable, "bare_loop.py"], cwd=folder, check=True, capture_output=True, text=True
    )
    medians: dict[str, float] = json.loads(ran.stdout.splitlines()[-1])
    return medians


def timing_bias(folder: Path, rounds: int) -> None:
    print(
        f"{'round':>5}  {'program':<16}  {'pytest-aibench us':>17}  {'pytest-benchmark us':>19}  "
        f"{'bare loop us':>12}"
    )
    for index in range(1, rounds + 1):
        ours, peer, bare = aibench_medians(folder), peer_medians(folder), loop_medians(folder)
        for program in PROGRAMS:
            print(
                f"{index:>5}  {program:<16}  {ours[program]:>17.2f}  {peer[program]:>19.2f}  "
                f"{bare[program]:>12.2f}"
            )


def frameworks(folder: Path) -> None:
    print(
        f"\n{'DS-CNN as':<16}  {'runner':<11}  {'p50 us':>9}  {'p90 us':>9}  {'max abs error':>13}"
    )
    for item in aibench_items(folder, "frameworks_*.json"):
        found = metrics(item)
        summary = found["NET latency"]["summary"]
        error = found["y max_abs_error"]["values"][0]
        print(
            f"{program_of(item):<16}  {item['case']['framework']!s:<11}  {summary['p50']:>9.2f}  "
            f"{summary['p90']:>9.2f}  {error:>13.2e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="ExecuTorch's threadpool size")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        prepare(folder, options.threads)
        timing_bias(folder, options.rounds)
        frameworks(folder)


if __name__ == "__main__":
    main()
