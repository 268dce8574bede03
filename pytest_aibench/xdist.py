"""What only pytest-xdist needs: the controller hands each worker its fleet and its control run,
and spec runs hand each device's items to one worker (the rest one at a time). Registered by
plugin.py only when xdist is active. A run with no spec and no device option keeps xdist's own
scheduling and probes no device."""

from __future__ import annotations

from typing import Any

import pytest

from .session import WORKER_CONTROL, WORKER_DEVICES, RunState


class XdistHooks:
    """Registered only when pytest-xdist is active."""

    def __init__(self, run: RunState) -> None:
        self.run = run

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Our scheduling where the run has a fleet, we chose the distribution (no --dist
        given) and every case runs on every device; otherwise xdist's own."""
        settings = self.run.settings  # fleet_run: the fleet is ours to schedule
        if not settings.fleet_run or _dist_given(config) or settings.fleet != "each":
            return None
        return device_scheduling(config, log, [d.id for d in self.run.fleet.devices])

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.run.settings.fleet_run:  # else a worker that needs the host lists it itself
            node.workerinput[WORKER_DEVICES] = [d.to_dict() for d in self.run.fleet.devices]
        if self.run.control_paths:
            node.workerinput[WORKER_CONTROL] = [str(p) for p in self.run.control_paths]


def _dist_given(config: pytest.Config) -> bool:
    return any(arg == "-d" or arg.startswith("--dist") for arg in config.invocation_params.args)


def one_item_at_a_time(config: pytest.Config) -> None:
    """Under ``-n N`` without an explicit ``--dist``: xdist's default (``load``) hands each
    worker a batch of items up front, so a worker waits on the lease of a busy device while
    another device sits idle. ``loadgroup`` hands out work units to whichever worker is free;
    ours (:func:`device_scheduling`) makes each device's items one unit."""
    if getattr(config.option, "dist", None) == "load" and not _dist_given(config):
        config.option.dist = "loadgroup"


def device_scheduling(config: pytest.Config, log: Any, device_ids: list[str]) -> Any:
    """xdist's ``loadgroup`` scheduling with one work unit per device: the spec items of a
    device (their node ids end ``-<device id>]``) go to one worker, which runs them back to
    back, so no worker waits on the lease of a device another worker holds while a device
    sits idle (perf/fleet.py: 4 devices, 2 s items, from 2.58x to see docs/performance.md).
    Other items are units of one, as with ``loadgroup``. Node ids do not change (no
    ``xdist_group`` marks)."""
    from xdist.scheduler import LoadGroupScheduling

    suffixes = sorted(((f"-{device}]", device) for device in device_ids), key=lambda s: -len(s[0]))

    class DeviceScheduling(LoadGroupScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            for suffix, device in suffixes:
                if nodeid.endswith(suffix):
                    return f"aibench device {device}"
            return str(super()._split_scope(nodeid))

        # After a worker crash, pytest-xdist 3.8's ``loadgroup`` queues the crashed item
        # again and hands its replacement one unit without saying that nothing follows; a
        # worker runs its last item only once it knows that, so the run never ended.

        def remove_node(self, node: Any) -> str | None:
            """The crashed item is done (xdist reports it failed), as ``load`` has it."""
            crashed: str | None = super().remove_node(node)
            if crashed is not None:
                scope = self._split_scope(crashed)
                unit = self.workqueue.get(scope, {})
                unit[crashed] = True
                if all(unit.values()):
                    self.workqueue.pop(scope, None)
            return crashed

        def _reschedule(self, node: Any) -> None:
            super()._reschedule(node)
            while (
                self.workqueue
                and not node.shutting_down
                and self._pending_of(self.assigned_work[node]) < 2
            ):
                self._assign_work_unit(node)
            if not self.workqueue and not node.shutting_down:
                node.shutdown()  # it has all its work: let it run its last item

    return DeviceScheduling(config, log)
