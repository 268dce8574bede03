"""Every judgement the plugin makes: the statistics of one comparison (``statistics``), the gate
against a stored control run (``gate``), A/B sides on one device (``sequential``: the rule,
``ab``: what its verdicts mean for the item), the false discovery rate over a run (``fdr``),
outputs against golden files (``golden``) and across frameworks (``agreement``). Pure: no
pytest, no I/O; numpy and scipy are imported by the functions that need them. One module reads:
``control`` loads the control run (run files, the history store).

This file imports nothing, so that a module needing one judgement loads only that one."""
