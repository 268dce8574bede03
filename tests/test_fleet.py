"""The fleet is listed once, by the xdist controller, and handed to the workers."""

import re

import pytest
from pytest import Pytester

from .helpers import generic_spec, write_json, write_program


def test_workers_use_the_controllers_device_list(pytester: Pytester) -> None:
    pytest.importorskip("xdist")
    # Every process that lists devices itself gets a different id; if workers did, their
    # collections would disagree and xdist would refuse to run.
    pytester.makeconftest(
        "import dataclasses, os\n"
        "import pytest_aibench.devices.fleet as plugin\n"
        "_listed = plugin.discover\n"
        "def per_process(*args):\n"
        "    return [dataclasses.replace(d, id=f'host{os.getpid()}') for d in _listed(*args)]\n"
        "plugin.discover = per_process\n"
    )
    write_program(pytester.path / "specs/prog.py")
    write_json(
        pytester.path / "specs/demo.json",
        generic_spec(
            "demo",
            tests=[
                {
                    "identifier": f"t{i}",
                    "metric": "delay",
                    "iter": 2,
                    "commands": ["{files.program} --iter {iter}"],
                }
                for i in range(4)
            ],
        ),
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "--aibench-spec=specs", "-v", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=4)
    ids = {
        match.group(1)
        for line in result.outlines
        if (match := re.search(r"demo\[t\d-(host\d+)\]", line))
    }
    assert len(ids) == 1  # one device id, the controller's
