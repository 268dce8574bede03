#!/usr/bin/env python3
"""The repository's models on a CUDA GPU beside the CPU: ONNX Runtime (CUDA execution
provider) and PyTorch (TorchScript and torch.export), one pytest run per backend.

For each item: warm latency p50 (us), load (us), first inference (us) and peak memory (MiB),
and the backend the run file records. Where neither framework sees a CUDA device the script
says so and exits 0 without a table: a run without a GPU proves nothing about one. Nothing is
asserted.

    python perf/gpu.py [--iterations 500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specifications" / "models"
WANTED = ("NET latency", "NET load", "NET first_inference", "NET peak_memory")


def cuda_frameworks() -> list[str]:
    """The frameworks that see a CUDA device here."""
    found = []
    try:
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            found.append("onnxruntime")
    except ImportError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            found.append("pytorch")
    except ImportError:
        pass
    return found


def run(backend: str, marks: str, iterations: int, folder: Path) -> list[dict[str, Any]]:
    out = folder / f"{backend}.json"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    options = [f"--aibench-spec={SPECS}", "-m", marks, f"--aibench-backend={backend}"]
    options += [f"--aibench-iterations={iterations}", f"--aibench-json={out}"]
    subprocess.run(
        [*command, *options, "--aibench-history=off", "--rootdir", str(REPO)],
        cwd=REPO,
        check=False,
        capture_output=True,
    )
    return list(json.loads(out.read_text())["items"]) if out.exists() else []


def p50(item: dict[str, Any], key: str) -> str:
    for metric in item.get("metrics", []):
        if f"{metric['type']} {metric['metric']}" == key:
            value = (metric.get("summary") or {}).get("p50")
            return "-" if value is None else f"{value:,.1f}"
    return "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=500)
    iterations = parser.parse_args().iterations
    frameworks = cuda_frameworks()
    if not frameworks:
        print("perf/gpu.py: no CUDA device is visible to onnxruntime or torch here: nothing run")
        return
    marks = " or ".join(frameworks)  # spec items carry their framework as a mark
    header = ("backend", "item", "latency us", "load us", "first us", "peak MiB", "recorded")
    print("  ".join(header))
    with tempfile.TemporaryDirectory() as name:
        for backend in ("cpu", "cuda"):
            for item in run(backend, marks, iterations, Path(name)):
                if item.get("outcome") != "passed":
                    continue
                recorded = (item.get("extra") or {}).get("backend")
                figures = [p50(item, key) for key in WANTED]
                print("  ".join([backend, item["nodeid"], *figures, json.dumps(recorded)]))


if __name__ == "__main__":
    main()
