import os


def connected_serials():
    text = os.environ.get("FAKE_MONSOON_SERIALS", "")
    return [int(s) for s in text.split(",") if s]


class USB_protocol:
    def __init__(self) -> None:
        self.DEVICE = None

    def enumerateDevices(self):
        return connected_serials()

    def Connect(self, deviceType, serialno=None) -> None:
        found = connected_serials()
        if not found or (serialno is not None and serialno not in found):
            print("Unable to find device")
            return
        self.DEVICE = {"serial": serialno or found[0], "type": deviceType}

    def closeDevice(self) -> None:
        self.DEVICE = None
