#!/usr/bin/env python3
"""Cold start, memory and agreement of one network on ONNX Runtime and LiteRT: pytest-aibench's
``--aibench-cold N`` beside a bare script timing the same steps in N fresh processes.

The bare script is what an engineer writes by hand: import the framework, time the load (file
to a ready session, or an interpreter with its tensors allocated), the first call and a warm
loop, and read the process's resident high-water mark (reset after the import, as the plugin
does) and that peak less what was resident before the load (the increment: the model's own,
where the peak also carries what each process had imported). If the plugin's
figures sit near the bare ones, its harness adds nothing to what it reports. The last rows are
the agreement of ONNX Runtime's outputs with LiteRT's (the reference), from the plugin.

    python perf/coldstart.py                       # the repository's MLP
    python perf/coldstart.py --onnx nmp.onnx --tflite nmp.tflite --name basic-pitch

The two files must be one network (same inputs; symbolic dimensions become 1). Nothing is
asserted; the figures are medians over the processes (latency: over every warm run of them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MLP = REPO / "specifications" / "models"
METRICS = ("load", "first_inference", "latency", "peak_memory", "memory_increment")
FRAMEWORKS = {"onnx": "onnxruntime", "tflite": "tflite"}

# One fresh process of the bare peer: prints {"load":..., "first_inference":..., "latency":
# [...], "peak_memory":..., "memory_increment":...} (us, MiB). Free of pytest_aibench on purpose.
BARE = textwrap.dedent(
    """
    import json, re, sys, time
    import numpy as np
    kind, path, warmup, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    def kib(field):
        text = open("/proc/self/status").read()
        return int(re.search(field + r":\\s+(\\d+) kB", text).group(1))
    def shaped(dims):
        return [int(d) if isinstance(d, (int, np.integer)) and d > 0 else 1 for d in dims]
    if kind == "onnx":
        import onnxruntime as ort
    else:
        from ai_edge_litert.interpreter import Interpreter
    resident = kib("VmRSS")
    open("/proc/self/clear_refs", "w").write("5")
    clock = time.perf_counter_ns
    start = clock()
    if kind == "onnx":
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        loaded = clock()
        feeds = {i.name: np.random.rand(*shaped(i.shape)).astype(np.float32)
                 for i in session.get_inputs()}
        run = lambda: session.run(None, feeds)
    else:
        interpreter = Interpreter(model_path=path)
        details = interpreter.get_input_details()
        for d in details:
            interpreter.resize_tensor_input(d["index"], shaped(list(d["shape_signature"])))
        interpreter.allocate_tensors()
        loaded = clock()
        for d in details:
            shape = shaped(list(d["shape_signature"]))
            interpreter.set_tensor(d["index"], np.random.rand(*shape).astype(np.float32))
        run = interpreter.invoke
    first = clock()
    run()
    done = clock()
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(iterations):
        begin = clock()
        run()
        samples.append((clock() - begin) / 1000)
    print(json.dumps({"load": (loaded - start) / 1000, "first_inference": (done - first) / 1000,
                      "latency": samples, "peak_memory": kib("VmHWM") / 1024,
                      "memory_increment": (kib("VmHWM") - resident) / 1024}))
    """
)


def bare(kind: str, model: Path, processes: int, warmup: int, iterations: int) -> dict[str, float]:
    """Medians of the bare script's figures over ``processes`` fresh processes."""
    runs = []
    for _ in range(processes):
        command = [sys.executable, "-c", BARE, kind, str(model), str(warmup), str(iterations)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"perf/coldstart.py: the bare {kind} script failed:\n{done.stderr}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    medians = {
        key: statistics.median(run[key] for run in runs) for key in METRICS if key != "latency"
    }
    medians["latency"] = statistics.median(sample for run in runs for sample in run["latency"])
    return medians


def plugin(
    models: dict[str, Path], name: str, processes: int, warmup: int, iterations: int
) -> list[dict[str, Any]]:
    """The run file's items of one pytest run of both frameworks, LiteRT as the reference."""
    with tempfile.TemporaryDirectory() as folder:
        here = Path(folder)
        for kind, model in models.items():
            spec = {
                "model": {
                    "name": name,
                    "format": kind,
                    "files": {"graph": {"filename": model.name, "location": str(model)}},
                },
                "tests": [
                    {"identifier": "cold", "metric": "delay", "warmup": warmup, "iter": iterations}
                ],
            }
            (here / f"{kind}.json").write_text(json.dumps(spec))
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
        options = [f"--aibench-spec={here}", f"--aibench-cold={processes}"]
        options += ["--aibench-reference=tflite", f"--aibench-json={here / 'run.json'}"]
        options += ["--aibench-history=off", "--rootdir", str(here)]
        subprocess.run([*command, *options], cwd=here, check=False, capture_output=True)
        run_file = here / "run.json"
        if not run_file.exists():
            sys.exit("perf/coldstart.py: the pytest run wrote no run file")
        return list(json.loads(run_file.read_text())["items"])


def p50s(item: dict[str, Any]) -> dict[str, float]:
    """``type metric`` -> p50 of one run-file item."""
    return {
        f"{metric['type']} {metric['metric']}": metric["summary"]["p50"]
        for metric in item.get("metrics", [])
        if (metric.get("summary") or {}).get("p50") is not None
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, default=MLP / "onnx" / "mlp" / "mlp.onnx")
    parser.add_argument("--tflite", type=Path, default=MLP / "tflite" / "mlp" / "mlp.tflite")
    parser.add_argument("--name", default="mlp")
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()
    models = {"onnx": args.onnx.resolve(), "tflite": args.tflite.resolve()}
    counts = (args.processes, args.warmup, args.iterations)
    items = {item["case"]["framework"]: p50s(item) for item in plugin(models, args.name, *counts)}
    print(
        f"{args.name}: p50 over {args.processes} fresh processes, {args.iterations} warm runs each"
    )
    print(
        f"{'framework':<12} {'metric':<16} {'pytest-aibench':>15} {'bare script':>12} {'ratio':>6}"
    )
    for kind, model in models.items():
        framework = FRAMEWORKS[kind]
        peer = bare(kind, model, *counts)
        ours = items.get(framework, {})
        for key in METRICS:
            mine = ours.get(f"NET {key}")
            shown = "-" if mine is None else f"{mine:,.1f}"
            ratio = "-" if mine is None else f"{mine / peer[key]:.2f}"
            print(f"{framework:<12} {key:<16} {shown:>15} {peer[key]:>12,.1f} {ratio:>6}")
    agreement = {k: v for k, v in items.get("onnxruntime", {}).items() if "vs tflite max_abs" in k}
    for key, value in sorted(agreement.items()):
        print(f"agreement    {key}: {value:.3g}")


if __name__ == "__main__":
    main()
