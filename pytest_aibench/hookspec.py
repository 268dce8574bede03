"""Hooks that other plugins and conftest.py files may implement."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import pytest

    from .devices.base import DeviceInfo
    from .devices.ios import IOSApps
    from .runners.base import Runner

hookspec = pluggy.HookspecMarker("pytest")


@hookspec(firstresult=True)
def pytest_aibench_runner(config: pytest.Config, framework: str) -> Runner | None:
    """Return a runner for ``framework`` (a spec's ``framework``, or the one its ``format``
    implies), or ``None`` to let the next implementation or the built-in runners answer.

    Example (a conftest.py)::

        class MxnetRunner:
            name = "mxnet"

            def unavailable(self, case, program):
                return None  # or why this case cannot run here

            def run(self, context):
                context.recorder.record("NET", "latency", "us", time_mxnet(context))

        def pytest_aibench_runner(config, framework):
            return MxnetRunner() if framework == "mxnet" else None
    """


@hookspec(firstresult=True)
def pytest_aibench_ios_apps(config: pytest.Config, device: DeviceInfo) -> IOSApps | None:
    """Return the service that installs, feeds and launches benchmark apps on the iOS
    ``device`` (for example one driving ``xcrun devicectl`` on macOS), or ``None`` for
    pymobiledevice3's.

    Example (a conftest.py; ``DevicectlApps`` implements ``devices.ios.IOSApps``)::

        def pytest_aibench_ios_apps(config, device):
            return DevicectlApps(device.id) if sys.platform == "darwin" else None
    """
