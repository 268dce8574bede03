import os
from typing import Any


def connected_serials() -> list[int]:
    text = os.environ.get("FAKE_MONSOON_SERIALS", "")
    return [int(s) for s in text.split(",") if s]


class USB_protocol:
    def __init__(self) -> None:
        self.DEVICE: dict[str, Any] | None = None

    def enumerateDevices(self) -> list[int]:
        return connected_serials()

    def Connect(self, deviceType: int, serialno: int | None = None) -> None:
        found = connected_serials()
        if not found or (serialno is not None and serialno not in found):
            print("Unable to find device")
            return
        self.DEVICE = {"serial": serialno or found[0], "type": deviceType}

    def closeDevice(self) -> None:
        self.DEVICE = None
