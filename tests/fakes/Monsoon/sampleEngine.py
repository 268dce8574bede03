import os

import numpy as np


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
    def __init__(self, monsoon, bulkProcessRate: int = 128):
        if monsoon.Protocol.DEVICE is None:
            raise AttributeError("'NoneType' object has no attribute 'read'")  # as the real one
        self.monsoon = monsoon
        self.enabled = set()
        self.samples = None

    def ConsoleOutput(self, value) -> None:
        pass

    def disableCSVOutput(self) -> None:
        pass

    def enableChannel(self, channel) -> None:
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
        volts = np.full(count, float(self.monsoon.vout))
        usb = np.zeros(count) if channels.USBCurrent in self.enabled else []
        self.samples = [
            list(np.arange(count) / 5000.0),
            list(current),
            list(usb),
            [],
            list(volts),
            list(volts) if len(usb) else [],
        ]

    def getSamples(self):
        return self.samples
