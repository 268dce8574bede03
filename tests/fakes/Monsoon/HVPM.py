from . import Operations as op
from . import pmapi


class Monsoon:
    MODEL = op.HardwareModel.HVPM

    def __init__(self) -> None:
        self.Protocol = pmapi.USB_protocol()
        self.vout = None
        self.passthrough = None

    def enumerateDevices(self):
        return pmapi.USB_protocol().enumerateDevices()

    def setup_usb(self, serialno=None, Protocol=None) -> None:
        protocol = Protocol or pmapi.USB_protocol()
        protocol.Connect(self.MODEL, serialno)
        self.Protocol = protocol

    def setVout(self, value) -> None:
        self.vout = value

    def setUSBPassthroughMode(self, code) -> None:
        self.passthrough = code

    def closeDevice(self) -> None:
        self.Protocol.closeDevice()
