"""What the plugin keeps in pytest's stashes, one typed key per value in one place, so that the
module that writes a value and the ones that read it need not import each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .collector import SpecCollector
    from .devices.base import DeviceInfo
    from .recorder import Recorder
    from .session import RunState
    from .spec.model import Case
# on the config
SESSION: pytest.StashKey[RunState] = pytest.StashKey()  # the run's shared state
COLLECTION: pytest.StashKey[SpecCollector] = pytest.StashKey()  # what a spec file needs of it
# on an item
CASE: pytest.StashKey[Case] = pytest.StashKey()  # its spec case
CANDIDATES: pytest.StashKey[tuple[DeviceInfo, ...]] = pytest.StashKey()  # the devices it may use
DEVICE: pytest.StashKey[DeviceInfo] = pytest.StashKey()  # the one it uses (pool mode: at setup)
DEVICE_STATE: pytest.StashKey[dict[str, float]] = pytest.StashKey()  # battery, temperature
MODEL_MD5: pytest.StashKey[dict[str, str]] = pytest.StashKey()  # its model files' MD5s
RECORDER: pytest.StashKey[Recorder] = pytest.StashKey()  # its aibench recorder
