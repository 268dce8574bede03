"""Energy and power: sources that sample a device's power while it works, and the analysis of
their traces (trace.py). Every source offers ``start()`` and ``stop() -> Trace``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # trace.py needs numpy, which the plugin's import must not pull in
    from .trace import Trace


# The power sources --aibench-power names (sources.py opens them).
SOURCES = ("monsoon", "monsoon_with_usb", "software", "android", "rapl")


class PowerSource(Protocol):
    name: str

    def start(self) -> None:
        """Begin sampling; returns at once."""

    def stop(self) -> Trace:
        """End sampling (a source with a fixed collection time first finishes it) and return
        what it measured."""
