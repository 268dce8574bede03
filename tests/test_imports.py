"""Installing the plugin must not slow every pytest run: its import loads nothing heavy."""

import subprocess
import sys

HEAVY = ("numpy", "scipy", "jsonschema", "yaml", "sqlite3", "ssl", "asyncio", "urllib.request",
         "urllib3", "filelock", "onnxruntime", "torch", "matplotlib")


def test_importing_the_plugin_loads_no_heavy_module():
    code = ("import sys, pytest_aibench.plugin\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == []
