"""Monsoon power monitors (HVPM, LVPM) through Monsoon Solutions' ``Monsoon`` package.

The meter powers the phone at a set voltage and samples its current at 5 kHz for a fixed
collection time, as FAI-PEP does. Sample times come from the sample count at 5 kHz: the
library's own timestamps are host clock readings per USB packet, not per sample.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ..errors import DeviceError, Unsupported
from .trace import Trace

RATE_HZ = 5000
MISSING = "Monsoon meters need the Monsoon package: pip install 'pytest-aibench[power]'"


def meter_serial(mapping_file: Path | None, device_hash: str) -> int | None:
    """--aibench-monsoon-map: which meter powers which device (JSON, device hash to serial)."""
    if mapping_file is None:
        return None
    try:
        mapping = json.loads(mapping_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeviceError(f"--aibench-monsoon-map {mapping_file}: {exc}") from None
    serial = mapping.get(device_hash) if isinstance(mapping, dict) else None
    return None if serial is None else int(serial)


class MonsoonSource:
    name = "monsoon"

    def __init__(
        self,
        collection_time: float,
        voltage: float = 4.0,
        with_usb: bool = False,
        serial: int | None = None,
        model: str = "HVPM",
    ) -> None:
        self.collection_time, self.voltage, self.with_usb = collection_time, voltage, with_usb
        self.samples: list[list[float]] = []
        self._meter, self._engine = self._connect(serial, model)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _connect(self, serial: int | None, model: str) -> tuple[Any, Any]:
        try:
            from Monsoon import HVPM, LVPM, Operations, sampleEngine
        except ImportError:
            raise Unsupported(MISSING) from None
        meter = (HVPM if model == "HVPM" else LVPM).Monsoon()
        found = list(meter.enumerateDevices())
        if not found or (serial is not None and serial not in found):
            wanted = f"meter {serial}" if serial is not None else "a meter"
            raise DeviceError(
                f"no Monsoon {model} power monitor found ({wanted} wanted; "
                f"connected: {', '.join(map(str, found)) or 'none'}); check its "
                "USB cable and that this user may open it (udev rule for "
                "2AB9:0001), or pick one with --aibench-monsoon-map"
            )
        meter.setup_usb(serial)
        if getattr(getattr(meter, "Protocol", None), "DEVICE", None) is None:
            # The library prints "Unable to find device" and returns instead of raising.
            raise DeviceError(f"the Monsoon {model} meter {serial or ''} could not be opened")
        meter.setVout(self.voltage)
        passthrough = Operations.USB_Passthrough
        meter.setUSBPassthroughMode(passthrough.On if self.with_usb else passthrough.Auto)
        engine = sampleEngine.SampleEngine(meter)
        channels = sampleEngine.channels
        engine.ConsoleOutput(False)
        engine.disableCSVOutput()
        for channel in (channels.MainCurrent, channels.MainVoltage) + (
            (channels.USBCurrent, channels.USBVoltage) if self.with_usb else ()
        ):
            engine.enableChannel(channel)
        return meter, engine

    def start(self) -> None:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        try:
            self._engine.startSampling(int(self.collection_time * RATE_HZ))
            self.samples = self._engine.getSamples()
        except BaseException as exc:  # raised again by stop(), in the caller's thread
            self._error = exc
        finally:
            self._meter.closeDevice()

    def stop(self) -> Trace:
        """Wait for the collection time to end; the trace in mW."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise DeviceError(f"the Monsoon meter failed while sampling: {self._error}")
        _, main, usb, _, main_volts, usb_volts = (list(column) for column in self.samples)
        if not main:
            raise DeviceError("the Monsoon meter returned no samples")
        count = len(main)
        power = [current * volts for current, volts in zip(main, main_volts, strict=True)]
        if self.with_usb:
            power = [
                p + current * volts for p, current, volts in zip(power, usb, usb_volts, strict=True)
            ]
        return Trace.from_samples(
            [index / RATE_HZ for index in range(count)],
            power,
            current_ma=main,
            voltage_v=main_volts,
            end_s=count / RATE_HZ,
        )
