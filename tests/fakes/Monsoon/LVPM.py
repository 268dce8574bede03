from . import HVPM
from . import Operations as op


class Monsoon(HVPM.Monsoon):
    MODEL = op.HardwareModel.LVPM
