#!/usr/bin/env python3
"""A good neighbour, proven on the neighbours' own tests: pytest-xdist's and pytest-benchmark's
test suites, from their source distributions, run in one virtual environment without this
plugin and then with it installed; every test must end the same way in both.

    python3 .ci/neighbours.py [--keep DIR]

Prints one row per suite (outcome counts without and with the plugin) and every test whose
outcome changed; exits 1 if any did. A test whose outcome differs is run again, alone, five
times in each state first: only a difference that holds counts (both suites have
timing-dependent tests; one that ends both ways in one state is listed as flaky).
Needs the package index (pip); standard library only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
NEIGHBOURS = {  # sdist -> (its tests folder, what its tests need, environment)
    "pytest-xdist==3.8.0": ("testing", ["filelock"], {}),
    "pytest-benchmark==5.3.1": (
        "tests",
        ["pytest-benchmark[aspect,elasticsearch,histogram]==5.3.1", "pygal==3.1.3",
         "pygaljs==1.0.2", "freezegun", "nbmake"],
        {"PYTHONPATH": "tests", "COLUMNS": "80"},
    ),
}  # fmt: skip
Outcomes = dict[str, str]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="work in DIR and leave it (default: a temp)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="aibench-neighbours-"))
    python = environment(work)
    suites = {name: unpack(python, name, work) for name in NEIGHBOURS}
    pip(python, "uninstall", "-y", "pytest-aibench")
    without = {name: run(python, name, folder, work / "without") for name, folder in suites.items()}
    pip(python, "install", "-e", str(REPOSITORY))
    with_plugin = {
        name: run(python, name, folder, work / "with") for name, folder in suites.items()
    }
    retries = {
        name: retried(python, name, suites[name], without[name], with_plugin[name], work)
        for name in suites
    }
    changed = {name: found[0] for name, found in retries.items()}
    report(without, with_plugin, changed)
    for name, (_, flaky) in retries.items():
        for line in flaky:
            print(f"FLAKY {name}: {line} (in {AGAIN + 1} runs each)")
    return 1 if any(changed.values()) else 0


def environment(work: Path) -> Path:
    """One virtual environment: the plugin's dependencies and the neighbours' test needs."""
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    python = work / "venv" / "bin" / "python"
    pip(python, "install", "-e", str(REPOSITORY), *NEIGHBOURS)
    pip(python, "install", *(need for _, needs, _ in NEIGHBOURS.values() for need in needs))
    return python


def pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "-q", "--disable-pip-version-check", *args],
                   check=True)  # fmt: skip


def unpack(python: Path, name: str, work: Path) -> Path:
    """The neighbour's source distribution, downloaded and unpacked: its tests live there."""
    sources = work / "sources"
    pip(python, "download", "--no-deps", "--no-binary", ":all:", "-d", str(sources), name)
    project, version = name.split("==")
    archive = next(sources.glob(f"{project.replace('-', '_')}-{version}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(sources, filter="data")
    return sources / archive.name.removesuffix(".tar.gz")


def run(
    python: Path, name: str, folder: Path, results: Path, ids: list[str] | None = None
) -> Outcomes:
    """Each test's outcome: passed, failed, error, skipped (xfail counts as skipped)."""
    tests, _, env = NEIGHBOURS[name]
    report_file = results / f"{name.split('==')[0]}.xml"
    results.mkdir(parents=True, exist_ok=True)
    # one process, as the neighbours' own CI runs them: several of xdist's tests count which
    # worker ran what, and fail now and then under the load of a parallel outer run
    command = [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q",
               f"--junitxml={report_file}", *(ids or [tests])]  # fmt: skip
    log = report_file.with_suffix(".log")
    with log.open("w") as output:
        subprocess.run(command, cwd=folder, env={**_base_env(), **env}, check=False,
                       stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
    if not report_file.is_file():  # pytest stopped before running anything
        sys.exit(f"{name}: pytest wrote no report; its output ends:\n{log.read_text()[-3000:]}")
    return outcomes(report_file)


def _base_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("AIBENCH_")}


def outcomes(report_file: Path) -> Outcomes:
    found: Outcomes = {}
    for case in ElementTree.parse(report_file).iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        test_id = f"{path}::{case.get('name')}"
        kinds = {child.tag for child in case}
        found[test_id] = next(
            (kind for kind in ("error", "failure", "skipped") if kind in kinds), "passed"
        ).replace("failure", "failed")
    return found


AGAIN = 5  # runs of a differing test in each state: a timing-dependent test flips now and then


def retried(
    python: Path, name: str, folder: Path, without: Outcomes, with_plugin: Outcomes, work: Path
) -> tuple[list[str], list[str]]:
    """The tests whose outcome differs, run AGAIN more times in each state: a difference holds
    when each state ends one way every time, and the two ways differ (changed); a test that
    ends both ways in one state is flaky, whatever the plugin (pytest-xdist's
    test_workqueue_ordered_by_input passes and fails without it)."""
    differ = sorted(
        k for k in without.keys() | with_plugin.keys() if without.get(k) != with_plugin.get(k)
    )
    if not differ:
        return [], []
    node_ids = [_node_id(test_id, folder) for test_id in differ]
    runs_with = [
        run(python, name, folder, work / f"again-with-{n}", node_ids) for n in range(AGAIN)
    ]
    pip(python, "uninstall", "-y", "pytest-aibench")
    runs_without = [
        run(python, name, folder, work / f"again-without-{n}", node_ids) for n in range(AGAIN)
    ]
    pip(python, "install", "-e", str(REPOSITORY))
    changed, flaky = [], []
    for test_id in differ:
        ends_without = {found.get(test_id, "absent") for found in [without, *runs_without]}
        ends_with = {found.get(test_id, "absent") for found in [with_plugin, *runs_with]}
        without_said, with_said = ("/".join(sorted(ends)) for ends in (ends_without, ends_with))
        said = f"{test_id}: {without_said} without, {with_said} with the plugin"
        if len(ends_without) == 1 and len(ends_with) == 1:
            changed.append(said)
        else:
            flaky.append(said)
    return changed, flaky


def _node_id(test_id: str, folder: Path) -> str:
    """A junit ``classname::name`` back to a node id pytest can run (module path + class)."""
    path, name = test_id.split("::")
    parts = path.split("/")
    for cut in range(len(parts), 0, -1):
        module = "/".join(parts[:cut]) + ".py"
        if (folder / module).is_file():
            return "::".join([module, *parts[cut:], name])
    return test_id


KINDS = ("passed", "failed", "error", "skipped")


def report(
    without: dict[str, Outcomes], with_plugin: dict[str, Outcomes], changed: dict[str, list[str]]
) -> None:
    counts = " ".join(f"{kind:>7}" for kind in KINDS)
    print(f"{'suite':24} {'plugin':7} {counts} {'changed':>7}")
    for name in without:
        for state, found in (("without", without[name]), ("with", with_plugin[name])):
            tally = Counter(found.values())
            cells = " ".join(f"{tally[kind]:7d}" for kind in KINDS)
            print(f"{name:24} {state:7} {cells} {len(changed[name]):7d}")
    for name, lines in changed.items():
        for line in lines:
            print(f"CHANGED {name}: {line}")


if __name__ == "__main__":
    sys.exit(main())
