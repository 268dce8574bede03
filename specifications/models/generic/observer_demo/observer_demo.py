#!/usr/bin/env python3
"""A small benchmark program that reports the way FAI-PEP's observers do.

It times a pure-Python dot product of two vectors read from the input file (or made from a
seed), prints one ``PyTorchObserver {json}`` row per timed iteration, a per-"operator" row for
each of its two steps, a custom metric, and an info row. Only the standard library is used, so
any Python 3 runs it.

    observer_demo.py --input FILE --warmup W --iter N [--size N]
"""

from __future__ import annotations

import argparse
import json
import random
import time


def emit(**row: object) -> None:
    print("PyTorchObserver " + json.dumps(row), flush=True)


def load_vector(path: str | None, size: int) -> list[float]:
    if path:
        with open(path, encoding="utf-8") as handle:
            return [float(line) for line in handle if line.strip()]
    rng = random.Random(1)
    return [rng.uniform(-1, 1) for _ in range(size)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iter", type=int, default=10)
    parser.add_argument("--size", type=int, default=20000)
    args = parser.parse_args()
    vector = load_vector(args.input, args.size)
    weights = [0.5 - (i % 7) / 7 for i in range(len(vector))]
    for _ in range(args.warmup):
        sum(a * b for a, b in zip(vector, weights, strict=True))
    for _ in range(args.iter):
        start = time.perf_counter_ns()
        products = [a * b for a, b in zip(vector, weights, strict=True)]
        middle = time.perf_counter_ns()
        total = sum(products)
        end = time.perf_counter_ns()
        emit(type="NET", metric="latency", unit="us", value=(end - start) / 1000)
        emit(type="multiply", metric="latency", unit="us", value=(middle - start) / 1000)
        emit(type="reduce", metric="latency", unit="us", value=(end - middle) / 1000)
    emit(
        type="NET",
        metric="throughput",
        unit="elements/s",
        value=len(vector) / max((end - start) / 1e9, 1e-9),
    )
    emit(type="NET", metric="result", unit="", info_string=f"dot={total:.6f}")


if __name__ == "__main__":
    main()
