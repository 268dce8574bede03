"""Android phones' own power sources, read over adb while the phone works.

- ``android``: the fuel gauge's instantaneous ``current_now`` (uA) and ``voltage_now`` (uV)
  under ``/sys/class/power_supply/battery``, sampled during the run. Phones report discharge
  current with either sign, so its magnitude is used. A phone on USB is partly powered by the
  cable, which this source cannot see: unplug it (adb over Wi-Fi) or use a Monsoon meter.
- ``software`` (FAI-PEP's software method): the battery's charge counter (uAh, ``dumpsys
  battery``) before and after the collection time, times the battery voltage.
"""

from __future__ import annotations

import re
import time
from typing import Any

from ..errors import DeviceError
from .sampler import Sampler
from .trace import Trace

BATTERY = "/sys/class/power_supply/battery"


class AndroidBatterySource:
    name = "android"

    def __init__(self, device: Any, interval: float = 0.05, folder: str = BATTERY) -> None:
        self.device, self.folder = device, folder
        self._sampler = Sampler(self._read, interval)

    def _read(self) -> tuple[float, float]:
        text = self.device.shell(f"cat {self.folder}/current_now {self.folder}/voltage_now")
        numbers = text.split()
        if len(numbers) != 2:
            raise DeviceError(
                f"android device {self.device.info.hash}: cannot read "
                f"{self.folder}/current_now and voltage_now (got {text!r})"
            )
        return abs(float(numbers[0])), float(numbers[1])

    def start(self) -> None:
        self._sampler.start()

    def stop(self) -> Trace:
        samples = self._sampler.stop()
        origin = samples[0][0]
        return Trace.from_samples(
            [t - origin for t, _ in samples],
            [microamps * microvolts / 1e9 for _, (microamps, microvolts) in samples],
            current_ma=[microamps / 1000 for _, (microamps, _) in samples],
            voltage_v=[microvolts / 1e6 for _, (_, microvolts) in samples],
            end_s=samples[-1][0] - origin,
        )


def battery_charge(device: Any) -> tuple[float, float]:
    """Charge counter (uAh) and voltage (V) from ``dumpsys battery``."""
    text = device.shell("dumpsys battery")
    charge = re.search(r"Charge counter:\s*(\d+)", text)
    voltage = re.search(r"^\s*voltage:\s*(\d+)", text, re.MULTILINE)
    if charge is None or voltage is None:
        raise DeviceError(
            f"android device {device.info.hash}: dumpsys battery reports no "
            "'Charge counter' and 'voltage'; this phone's fuel gauge cannot be "
            "read that way (try --aibench-power android)"
        )
    return float(charge.group(1)), float(voltage.group(1)) / 1000


class AndroidChargeSource:
    """No trace, two readings: the trace it returns holds one sample, the mean power between
    them."""

    name = "software"

    def __init__(self, device: Any) -> None:
        self.device = device
        self.readings: list[tuple[float, float, float]] = []

    def start(self) -> None:
        self.readings = [(time.monotonic(), *battery_charge(self.device))]

    def stop(self) -> Trace:
        self.readings.append((time.monotonic(), *battery_charge(self.device)))
        (t0, before, volts0), (t1, after, volts1) = self.readings
        millijoules = (before - after) * 3.6 * (volts0 + volts1) / 2  # 1 uAh = 3.6 mC
        seconds = max(t1 - t0, 1e-9)
        return Trace.from_samples([0.0], [millijoules / seconds], end_s=seconds)
