"""Linux RAPL energy counters under the powercap sysfs tree.

Each top-level zone (``intel-rapl:0`` for package 0, ...; its sub-zones ``intel-rapl:0:0`` are
parts of it and would count twice) has ``energy_uj``, a counter that wraps to zero at
``max_energy_range_uj``. Sampling the counters and differencing gives power; the energy of the
whole trace equals the counters' own difference.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from ..errors import Unsupported
from .sampler import Sampler
from .trace import Trace

DEFAULT_ROOT = Path("/sys/class/powercap")


def zones(root: Path) -> list[Path]:
    return sorted(path for path in root.glob("*") if re.fullmatch(r"intel-rapl:\d+", path.name))


def wrapped_difference(before: int, after: int, maximum: int) -> int:
    return after - before if after >= before else after + maximum - before


class RaplSource:
    name = "rapl"

    def __init__(self, root: Path = DEFAULT_ROOT, interval: float = 0.01) -> None:
        self.zones = zones(root)
        if not self.zones:
            raise Unsupported(
                f"no RAPL energy counters under {root} (intel-rapl:N with "
                "energy_uj); this machine does not expose them (virtual machines "
                "usually do not), or pass --aibench-rapl-root"
            )
        self.maximum = [int((zone / "max_energy_range_uj").read_text()) for zone in self.zones]
        self._sampler = Sampler(self._read, interval)

    def _read(self) -> list[int]:
        return [int((zone / "energy_uj").read_text()) for zone in self.zones]

    def start(self) -> None:
        self._sampler.start()

    def stop(self) -> Trace:
        samples = self._sampler.stop()
        seconds, power = [], []
        for (t0, before), (t1, after) in itertools.pairwise(samples):
            microjoules = sum(
                wrapped_difference(b, a, m)
                for b, a, m in zip(before, after, self.maximum, strict=True)
            )
            seconds.append(t0 - samples[0][0])
            power.append(microjoules / 1000 / max(t1 - t0, 1e-9))  # uJ/s = 1e-3 mW
        return Trace.from_samples(seconds, power, end_s=samples[-1][0] - samples[0][0])
