"""Which power source measures a case: the command line's ``--aibench-power``, else a power
test's ``method`` (FAI-PEP's default: a Monsoon meter), else what the device kind has (RAPL on
a Linux host, the fuel gauge on an Android phone)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import RunnerError, Unsupported
from ..spec.model import Case
from . import SOURCES, PowerSource
from .android import AndroidBatterySource, AndroidChargeSource
from .monsoon import MonsoonSource, meter_serial
from .rapl import RaplSource

DEFAULT_COLLECTION_SECONDS = 180.0
DEFAULT_VOLTAGE = 4.0


def power_settings(case: Case) -> Mapping[str, Any]:
    """``collection_time``, ``voltage`` and ``disable_usb`` from the test's ``monsoon`` object
    (what FAI-PEP's code reads) or from the test itself (what its power specs carry)."""
    monsoon = case.test.get("monsoon") or {}
    if not isinstance(monsoon, Mapping):
        raise RunnerError(
            f"{case.where}: 'monsoon' should be an object with collection_time, "
            "voltage and disable_usb"
        )
    return {
        key: monsoon.get(key, case.test.get(key))
        for key in ("collection_time", "voltage", "disable_usb")
    }


def collection_time(case: Case) -> float:
    value = power_settings(case)["collection_time"]
    return DEFAULT_COLLECTION_SECONDS if value is None else float(value)


def source_name(case: Case, chosen: str | None, device_kind: str) -> str:
    if chosen:
        return chosen
    if case.metric == "power":
        return str(case.test.get("method") or "monsoon")
    return {"host": "rapl", "ssh": "rapl", "android": "android"}.get(device_kind, "")


def open_source(
    case: Case, device: Any, chosen: str | None, monsoon_map: Path | None, rapl_root: Path
) -> PowerSource:
    name = source_name(case, chosen, device.info.kind)
    if name in ("monsoon", "monsoon_with_usb"):
        if case.metric != "power":
            raise Unsupported(
                "a Monsoon meter samples for a fixed collection time: measure "
                "it in a power test (metric: power), or choose --aibench-power "
                "rapl|android for --aibench-energy"
            )
        settings = power_settings(case)
        return MonsoonSource(
            collection_time(case),
            float(settings["voltage"] or DEFAULT_VOLTAGE),
            with_usb=name == "monsoon_with_usb",
            serial=meter_serial(monsoon_map, device.info.hash),
        )
    if name == "rapl":
        if not device.local:
            raise Unsupported(f"RAPL counters are read on this host, not on {device.info.id}")
        return RaplSource(rapl_root)
    if name in ("android", "software"):
        if device.info.kind != "android":
            raise Unsupported(
                f"the {name} power source reads an Android phone's battery; "
                f"{device.info.id} is not one"
            )
        return AndroidBatterySource(device) if name == "android" else AndroidChargeSource(device)
    raise Unsupported(
        f"no power source for {device.info.id}: choose one of "
        f"{', '.join(SOURCES)} with --aibench-power"
    )
