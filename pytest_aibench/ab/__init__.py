"""A/B mode: an item's control and treatment sides interleaved in paired blocks on one device.

- ``sides``: what each side is (a program this process runs, or an in-process case a worker
  process runs) and what runs one block of it;
- ``blocks``: the blocks, their order and turns, epochs and re-runs, until the sequential rule
  decides (the judgement itself is pure, in ``verdicts/sequential.py`` and ``verdicts/ab.py``);
- ``worker``: ``python -m pytest_aibench.ab.worker``, the process that runs an in-process case
  afresh (A/B's sides, and ``--aibench-cold``'s fresh processes).

This file imports nothing, so that a worker starts without loading the rest of the plugin.
"""
