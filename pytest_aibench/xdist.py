"""What only pytest-xdist needs: the controller hands each worker its fleet and its control run,
and spec runs hand out one item at a time. Registered by plugin.py only when xdist is active."""

from __future__ import annotations

from typing import Any

import pytest

from .session import WORKER_CONTROL, WORKER_DEVICES, AibenchSession


class XdistHooks:
    """Registered only when pytest-xdist is active."""

    def __init__(self, session: AibenchSession) -> None:
        self.session = session

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKER_DEVICES] = [d.to_dict() for d in self.session.devices]
        if self.session.control_paths:
            node.workerinput[WORKER_CONTROL] = [str(p) for p in self.session.control_paths]


def one_item_at_a_time(config: pytest.Config) -> None:
    """Under ``-n N`` without an explicit ``--dist``: xdist's default (``load``) hands each
    worker a batch of items up front, so a worker waits on the lease of a busy device while
    another device sits idle. ``loadgroup`` with no groups hands out one item at a time to
    whichever worker is free (measured in perf/fleet.py: 4 devices 2.98x faster than -n 0,
    against 2.47x with ``load``). No xdist_group marks are added, so node ids do not change."""
    given = any(arg == "-d" or arg.startswith("--dist") for arg in config.invocation_params.args)
    if getattr(config.option, "dist", None) == "load" and not given:
        config.option.dist = "loadgroup"
