"""The dashboard's memory and time for one upload (``POST /api/runs``), by size and shape.

    python perf/upload_memory.py [--sizes 1,4,16]

Each upload runs in a fresh process (the app on a new SQLite store, through Starlette's test
client, the app's own code path): the table gives the process's peak resident memory before
the upload and after it, and the upload's and the home page's time. Two shapes of run file:
``samples`` (few items, long sample lists) and ``operators`` (many items with 60 operator rows
each, many small JSON objects: the costly kind). Recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_aibench.records import ItemRecord

REPOSITORY = Path(__file__).resolve().parents[1]


def run_file(megabytes: float, shape: str) -> bytes:
    sys.path.insert(0, str(REPOSITORY))
    from tests.helpers import item_record, metric_record, operator_dict, run_file

    def item(index: int) -> ItemRecord:
        if shape == "samples":
            return item_record(
                f"m.json::m[x{index}]", metric_record([1 + j * 1e-6 for j in range(5000)])
            )
        operators = [operator_dict(f"op{k}", "Conv", 1.0, 0.1) for k in range(60)]
        return item_record(f"m.json::m[x{index}]", metric_record([1.0, 2.0]), operators=operators)

    one = len(json.dumps(item(0)))
    count = max(1, int(megabytes * 1e6 / one))
    return json.dumps(run_file(*(item(i) for i in range(count)), id="big")).encode()


def measure(megabytes: float, shape: str) -> dict[str, float]:
    from starlette.testclient import TestClient

    from pytest_aibench.dashboard.app import create_app
    from pytest_aibench.store import history

    body = run_file(megabytes, shape)
    with (
        tempfile.TemporaryDirectory() as folder,
        TestClient(create_app(history.location(str(Path(folder) / "h.sqlite")), "t")) as client,
    ):
        client.get("/")
        before = _peak_mib()
        started = time.perf_counter()
        answer = client.post("/api/runs", content=body, headers={"Authorization": "Bearer t"})
        upload_s = time.perf_counter() - started
        started = time.perf_counter()
        client.get("/")
        home_s = time.perf_counter() - started
    return {"mb": len(body) / 1e6, "status": answer.status_code, "before": before,
            "after": _peak_mib(), "upload_s": upload_s, "home_s": home_s}  # fmt: skip


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,4,16", help="megabytes of run file (1,4,16)")
    parser.add_argument("--one", nargs=2, metavar=("MB", "SHAPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(float(args.one[0]), args.one[1])))
        return
    print(f"{'shape':10} {'body MB':>8} {'status':>6} {'peak before':>12} {'peak after':>11} "
          f"{'growth':>7} {'upload s':>9} {'home s':>7}")  # fmt: skip
    for shape in ("samples", "operators"):
        for size in args.sizes.split(","):
            done = subprocess.run([sys.executable, __file__, "--one", size, shape],
                                  capture_output=True, text=True, check=True)  # fmt: skip
            row = json.loads(done.stdout)
            print(f"{shape:10} {row['mb']:8.1f} {row['status']:6d} {row['before']:9.0f} MiB "
                  f"{row['after']:7.0f} MiB {row['after'] - row['before']:5.0f} MiB "
                  f"{row['upload_s']:9.2f} {row['home_s']:7.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
