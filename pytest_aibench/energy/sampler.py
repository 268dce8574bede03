"""A background thread that reads a source every ``interval`` seconds until stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Sampler(Generic[T]):
    def __init__(self, read: Callable[[], T], interval: float) -> None:
        self._read, self._interval = read, interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples: list[tuple[float, T]] = []
        self.error: BaseException | None = None

    def start(self) -> None:
        self.samples, self.error = [], None
        self._stopping.clear()
        self._take()  # the first reading before start() returns: nothing is missed
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _take(self) -> None:
        self.samples.append((time.monotonic(), self._read()))

    def _loop(self) -> None:
        try:
            while not self._stopping.wait(self._interval):
                self._take()
        except BaseException as exc:  # kept, raised by stop() in the caller's thread
            self.error = exc

    def stop(self) -> list[tuple[float, T]]:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error
        self._take()  # the last reading after the work: nothing is missed either
        return self.samples
