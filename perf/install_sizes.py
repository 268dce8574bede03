#!/usr/bin/env python3
"""How much each extra adds to an install: the packages it pulls in beyond the plain plugin
and their size on disk, read from the environment this script runs in (the installed files of
each distribution, and the dependency closure its metadata declares). Run it in an environment
where the extras are installed (the test install holds all but ``ios`` and ``power``).

    python perf/install_sizes.py [EXTRA ...]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata as metadata
import os
from collections.abc import Iterable

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

EXTRAS = (
    "onnx",
    "tflite",
    "torch",
    "executorch",
    "genai",
    "android",
    "ios",
    "power",
    "html",
    "lab",
    "test",
)
DISTRIBUTIONS: dict[str, metadata.Distribution] = {
    canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()
}


def size_on_disk(name: str) -> int:
    total = 0
    for file in DISTRIBUTIONS[name].files or []:
        with contextlib.suppress(OSError):
            total += os.stat(file.locate()).st_size
    return total


def closure(wanted: Iterable[tuple[str, frozenset[str]]]) -> tuple[set[str], set[str]]:
    """The installed distributions a requirement set pulls in, and those it names that are
    not installed here."""
    found: set[str] = set()
    missing: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    stack = list(wanted)
    while stack:
        name, extras = stack.pop()
        key = canonicalize_name(name)
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        if key not in DISTRIBUTIONS:
            missing.add(key)
            continue
        found.add(key)
        for text in DISTRIBUTIONS[key].requires or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker and not any(marker.evaluate({"extra": e}) for e in extras or {""}):
                continue
            stack.append((requirement.name, frozenset(requirement.extras)))
    return found, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extras", nargs="*", default=EXTRAS)
    args = parser.parse_args()
    plain, _ = closure([("pytest-aibench", frozenset())])
    print(f"{'extra':9} {'packages':>8} {'MiB':>8}  largest")
    print(f"{'(none)':9} {len(plain):8} {sum(map(size_on_disk, plain)) / 2**20:8.0f}")
    for extra in args.extras:
        found, missing = closure([("pytest-aibench", frozenset({extra}))])
        added = found - plain
        largest = sorted(added, key=size_on_disk, reverse=True)[:4]
        names = ", ".join(f"{n} {size_on_disk(n) / 2**20:.0f}" for n in largest)
        absent = f"  (not installed here: {', '.join(sorted(missing))})" if missing else ""
        mib = sum(map(size_on_disk, added)) / 2**20
        print(f"{extra:9} {len(added):8} {mib:8.0f}  {names}{absent}")


if __name__ == "__main__":
    main()
