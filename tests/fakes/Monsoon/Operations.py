class HardwareModel:
    UNKNOWN = 0
    LVPM = 1
    HVPM = 2


class USB_Passthrough:
    Off = 0
    On = 1
    Auto = 2
