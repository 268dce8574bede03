import os

import numpy as np

from .HVPM import Monsoon


class channels:
    timeStamp = 0
    MainCurrent = 1
    USBCurrent = 2
    AuxCurrent = 3
    MainVoltage = 4
    USBVoltage = 5


class triggers:
    SAMPLECOUNT_INFINITE = 0xFFFFFFFF


class SampleEngine:
    def __init__(self, monsoon: Monsoon, bulkProcessRate: int = 128) -> None:
        if monsoon.Protocol.DEVICE is None:
            raise AttributeError("'NoneType' object has no attribute 'read'")  # as the real one
        self.monsoon = monsoon
        self.enabled: set[int] = set()
        self.samples: list[list[float]] | None = None

    def ConsoleOutput(self, value: bool) -> None:
        pass

    def disableCSVOutput(self) -> None:
        pass

    def enableChannel(self, channel: int) -> None:
        self.enabled.add(channel)

    def startSampling(
        self,
        samples: int = 5000,
        granularity: int = 1,
        legacy_timestamp: bool = False,
        calTime: int = 1250,
    ) -> None:
        current = np.load(os.environ["FAKE_MONSOON_TRACE"])[:samples]
        count = len(current)
        assert self.monsoon.vout is not None, "setVout() comes before sampling"
        volts = np.full(count, self.monsoon.vout)
        usb = np.zeros(count if channels.USBCurrent in self.enabled else 0)
        self.samples = [
            list(np.arange(count) / 5000.0),
            list(current),
            list(usb),
            [],
            list(volts),
            list(volts) if len(usb) else [],
        ]

    def getSamples(self) -> list[list[float]] | None:
        return self.samples
