"""Installing the plugin must not slow every pytest run: its import loads nothing heavy."""

import subprocess
import sys

HEAVY = (
    "numpy",
    "scipy",
    "jsonschema",
    "yaml",
    "sqlite3",
    "ssl",
    "asyncio",
    "urllib.request",
    "urllib3",
    "filelock",
    "onnxruntime",
    "torch",
    "matplotlib",
)


def test_importing_the_plugin_loads_no_heavy_module():
    code = (
        "import sys, pytest_aibench.plugin\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


PURE_AND_DEVICE_SIDE = (
    "spec",
    "parsers.observer",
    "parsers.tflite",
    "parsers.ort_profile",
    "metrics",
    "recorder",
    "compare",
    "golden",
    "names",
    "options",
    "devices.fleet",
    "devices.lease",
    "devices.android",
    "devices.ios",
    "devices.ssh",
    "runners",
    "runners.execute",
    "energy.sources",
    "store",
    "publish",
    "report",
    "history",
    "remote",
)


def test_the_core_devices_runners_and_reporting_do_not_reach_pytest():
    code = (
        "import importlib, sys\n"
        f"for name in {PURE_AND_DEVICE_SIDE!r}:\n"
        "    importlib.import_module('pytest_aibench.' + name)\n"
        "print(' '.join(m for m in ('pytest', '_pytest') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []
