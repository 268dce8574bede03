#!/usr/bin/env python3
"""What installing the plugin costs every pytest run that does not use it.

Two measurements, each in fresh processes, the two sides interleaved so that the machine's
drift touches both alike:

- import: ``import pytest`` against ``import pytest, pytest_aibench.plugin`` (in-process
  ``perf_counter`` around the imports, so interpreter start-up is left out);
- collect: ``pytest --collect-only -q`` in an empty folder with the plugin against the same with
  ``-p no:aibench`` (wall clock of the whole process).

Python's byte-code cache is on for both (``PYTHONDONTWRITEBYTECODE`` is dropped from their
environment, and one warm-up run writes the cache), as it is where pip installed the plugin:
without it every module is compiled at each start and the figures measure the compiler.

Prints best and median per side and the difference; nothing is asserted.

    python perf/startup.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
IMPORT = "import time; t = time.perf_counter(); import pytest{more}; print(time.perf_counter() - t)"


def import_seconds(more: str) -> float:
    code = IMPORT.format(more=more)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV
    )
    return float(done.stdout)


def collect_seconds(folder: str, *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *extra],
        cwd=folder,
        env=ENV,
        capture_output=True,
        check=False,  # exit code 5: no tests collected
    )
    return time.perf_counter() - start


def row(label: str, values: list[float]) -> str:
    return f"{label:<34} {min(values) * 1e3:9.1f} {statistics.median(values) * 1e3:9.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    sides: dict[str, list[float]] = {key: [] for key in ("pytest", "plugin", "off", "on")}
    with tempfile.TemporaryDirectory() as empty:
        collect_seconds(empty)  # writes the byte-code cache
        for _ in range(args.repeat):
            sides["pytest"].append(import_seconds(""))
            sides["plugin"].append(import_seconds(", pytest_aibench.plugin"))
            sides["off"].append(collect_seconds(empty, "-p", "no:aibench"))
            sides["on"].append(collect_seconds(empty))
    print(f"{'':<34} {'best ms':>9} {'median ms':>9}")
    print(row("import pytest", sides["pytest"]))
    print(row("import pytest + plugin", sides["plugin"]))
    print(row("collect-only, -p no:aibench", sides["off"]))
    print(row("collect-only, plugin on", sides["on"]))
    for label, base, with_plugin in (("import", "pytest", "plugin"), ("collect", "off", "on")):
        extra = statistics.median(sides[with_plugin]) - statistics.median(sides[base])
        share = extra / statistics.median(sides[base])
        print(f"{label}: the plugin adds {extra * 1e3:.1f} ms ({share:+.1%}) by the medians")


if __name__ == "__main__":
    main()
