"""Small builders for spec files used by the end-to-end tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OBSERVER_PROGRAM = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
def arg(name, default=None):
    return args[args.index(name) + 1] if name in args else default
iterations = int(arg("--iter", "3"))
for i in range(iterations):
    print("PyTorchObserver " + json.dumps(
        {"type": "NET", "metric": "latency", "unit": "ms", "value": 10 + i}))
print("PyTorchObserver " + json.dumps(
    {"type": "conv1", "metric": "latency", "unit": "ms", "value": 4}))
if arg("--out"):
    open(arg("--out"), "w").write("written\\n")
sys.exit(int(os.environ.get("EXIT_CODE", "0")))
"""


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def write_program(path: Path, text: str = OBSERVER_PROGRAM) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


def generic_spec(
    name: str = "demo", tests: list[dict[str, Any]] | None = None, **model: Any
) -> dict[str, Any]:
    return {
        "model": {
            "name": name,
            "format": "generic",
            "files": {"program": {"filename": "prog.py", "location": "prog.py"}},
            **model,
        },
        "tests": tests
        or [
            {
                "identifier": "{ID}",
                "metric": "delay",
                "iter": 3,
                "commands": ["{files.program} --iter {iter}"],
            }
        ],
    }


def caffe2_spec(name: str, dims: list[str]) -> dict[str, Any]:
    """A Caffe2 spec in FAI-PEP's current form: one test per input size."""
    files = {
        part: {
            "filename": f"{part}_net.pb",
            "md5": "0" * 32,
            "location": f"https://example.invalid/{name}/{part}_net.pb",
        }
        for part in ("init", "predict")
    }
    tests = [
        {
            "identifier": "{ID}",
            "metric": "delay",
            "iter": 50,
            "warmup": 1,
            "commands": [
                "{program} --net {files.predict} --init_net {files.init} "
                f"--warmup {{warmup}} --iter {{iter}} --input_dims {d}"
            ],
        }
        for d in dims
    ]
    return {"model": {"name": name, "format": "caffe2", "files": files}, "tests": tests}
