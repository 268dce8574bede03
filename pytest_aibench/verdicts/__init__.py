"""Every judgement the plugin makes: the statistics of one comparison (``statistics``), the gate
against a stored control run (``gate``), A/B sides on one device (``ab``), the false discovery
rate over a run (``fdr``) and outputs against golden files (``golden``). Pure: no pytest, no
I/O; numpy and scipy are imported by the functions that need them."""

from .ab import ab_failure
from .fdr import adjust_for_many, benjamini_hochberg
from .gate import ControlRun, Judgement, compare_items, item_key, what_changed
from .golden import GoldenMismatch, Tolerance
from .statistics import GATED_METRICS, HIGHER, LOWER, Rule, Verdict, direction, judge, regressions

__all__ = [
    "GATED_METRICS",
    "HIGHER",
    "LOWER",
    "ControlRun",
    "GoldenMismatch",
    "Judgement",
    "Rule",
    "Tolerance",
    "Verdict",
    "ab_failure",
    "adjust_for_many",
    "benjamini_hochberg",
    "compare_items",
    "direction",
    "item_key",
    "judge",
    "regressions",
    "what_changed",
]
