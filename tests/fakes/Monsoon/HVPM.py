from . import Operations as op
from . import pmapi


class Monsoon:
    MODEL = op.HardwareModel.HVPM

    def __init__(self) -> None:
        self.Protocol = pmapi.USB_protocol()
        self.vout: float | None = None
        self.passthrough: int | None = None

    def enumerateDevices(self) -> list[int]:
        return pmapi.USB_protocol().enumerateDevices()

    def setup_usb(
        self, serialno: int | None = None, Protocol: pmapi.USB_protocol | None = None
    ) -> None:
        protocol = Protocol or pmapi.USB_protocol()
        protocol.Connect(self.MODEL, serialno)
        self.Protocol = protocol

    def setVout(self, value: float) -> None:
        self.vout = value

    def setUSBPassthroughMode(self, code: int) -> None:
        self.passthrough = code

    def closeDevice(self) -> None:
        self.Protocol.closeDevice()
