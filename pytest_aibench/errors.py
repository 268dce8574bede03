"""The plugin's exceptions.

Every error the plugin raises on purpose is an :class:`AibenchError`; its message says where the
problem is, what was expected and what was found, and how to fix it. The plugin turns these into
collection errors (bad specs) or item failures (downloads, devices, runners) without a traceback
into our own code, because the traceback would only distract from the message.
"""

from __future__ import annotations


class AibenchError(Exception):
    """Base class of every error the plugin reports to the user."""


class SpecError(AibenchError):
    """A spec file cannot be read, does not validate, or cannot be expanded."""

    def __init__(self, path: str, where: str, problem: str) -> None:
        self.path = path
        self.where = where
        self.problem = problem
        super().__init__(self.message(path))

    def message(self, shown_path: str) -> str:
        """The message with the spec file named as ``shown_path`` (e.g. relative to the cwd)."""
        location = f"{shown_path}: {self.where}" if self.where else shown_path
        return f"{location}: {self.problem}"


class CacheError(AibenchError):
    """A model file cannot be fetched or does not match its MD5."""


class DeviceError(AibenchError):
    """A device cannot be reached or a command on it fails to start."""


class RunnerError(AibenchError):
    """A benchmark program or framework run failed, or its output made no sense."""


class Unsupported(AibenchError):
    """This case cannot run here (a missing backend, a runner that needs the host): the item
    is skipped with this message, not failed."""


class AibenchWarning(UserWarning):
    """Something the user should change, though the item still ran (an A/B spec that asks for
    more threads than the device has CPUs); shown in pytest's warnings summary, under the item."""
