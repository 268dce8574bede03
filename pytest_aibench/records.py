"""The records the plugin writes and reads, typed: a run file, its items, their metrics,
operators and verdicts. They are the run file's JSON as Python sees it (``json.load`` gives
them back as they are), so mypy checks every field a runner, a verdict or a reporter touches.
Pure: no pytest, no I/O.

The run file's format is version 1 (``runfile.py``). The fields of the ``total=False``
bases may be missing: from files written by earlier versions, or where they do not apply.
"""

from __future__ import annotations

from typing import Any, Final, Literal

# typing_extensions' TypedDict: the one pydantic can check on Python before 3.12, which is how
# a run file read back is checked against these records (runfile.py check_run).
from typing_extensions import TypedDict

VerdictStatus = Literal["regressed", "improved", "unchanged", "insufficient", "inconclusive"]
REGRESSED: Final = "regressed"
IMPROVED: Final = "improved"
UNCHANGED: Final = "unchanged"
INSUFFICIENT: Final = "insufficient"
INCONCLUSIVE: Final = "inconclusive"  # A/B: the time budget ran out before a decision
# A continuous-mode run of one build in one word: a verdict where its items have one, else
# FAILED (pytest did not get that far, or items failed and not as regressions) or MEASURED.
FAILED: Final = "failed"
MEASURED: Final = "measured"
RunCall = Literal[VerdictStatus, "failed", "measured"]

# How an item was judged: against a stored control run (compared; unmatched: the control had
# no such item; changed: another workload under the same node id; refused: another device or
# framework version), or against its own A/B control side.
ComparisonState = Literal["compared", "unmatched", "changed", "refused", "ab"]

# The test report attribute that carries an item's record (a Payload) to the xdist controller.
# Extra report attributes travel through xdist's report serialisation; user_properties would
# too, but junitxml writes those into its XML, and raw samples do not belong there.
REPORT_ATTRIBUTE: Final = "aibench"

# Where a metric's statistics come from: its raw samples, or only the tool's own summary.
SummarySource = Literal["samples", "tool"]


class _MetricOptional(TypedDict, total=False):
    non_finite: dict[str, int]  # {"nan": 2}: samples left out of values
    direction: Literal["lower", "higher"]  # which way is better, where the name does not say
    definition: str  # what exactly was timed, where a name alone is ambiguous (generation)


class MetricDict(_MetricOptional):
    type: str  # NET, or an operator's name
    metric: str  # latency, energy, error, or a custom name
    unit: str
    values: list[float]  # every finite sample, in order
    num_runs: int
    summary: dict[str, float | None]  # p50, mean, ... (FAI-PEP's statistics)
    summary_source: SummarySource | None
    info_string: str | None


class OperatorDict(TypedDict):
    name: str
    type: str
    unit: str
    values: list[float]
    mean: float | None
    p50: float | None
    calls: int | None
    share: float | None  # of the whole net's time


class _VerdictOptional(TypedDict, total=False):
    p_adjusted: float  # Benjamini-Hochberg, with --aibench-fdr
    confidence: float  # of low .. high; verdicts written before issue 14 lack it (0.95)
    detectable: float | None  # the change its rule catches 9 times in 10 (0.02: +2%; -0.02, a drop,
    # where higher is better)
    control_runs: int  # stored runs the control was made of
    control_values: list[float]  # each stored run's statistic, where there are several


class VerdictFields(_VerdictOptional):
    """One metric's judgement, as a judge makes it. The one declaration of a verdict's fields:
    verdicts.statistics.Verdict holds a VerdictDict and says what it means."""

    key: str  # "NET latency"
    status: VerdictStatus
    method: str
    statistic: str  # p50, mean, p90
    unit: str
    control: float | None  # the control's statistic
    treatment: float | None
    low: float | None  # confidence interval of treatment / control
    high: float | None
    p_value: float | None
    n_control: int  # samples (A/B: paired blocks)
    n_treatment: int
    min_effect: float  # the smallest change the rule calls a change (0.05: 5%)


class VerdictDict(VerdictFields):
    """A verdict as the run file keeps it: its fields and the ratio they give."""

    ratio: float | None  # treatment / control


class _Workload(TypedDict, total=False):
    # what makes two items one workload; runs written before issue 12 lack them
    inputs: dict[str, Any]  # input name -> its shape
    model_md5: dict[str, str]


class _CaseOptional(_Workload, total=False):
    reference: str  # the spec's reference framework, whose outputs this network's agree with
    layout: str  # the spec's NCHW or NHWC, for the agreement; absent: NCHW
    match: dict[str, list[str]]  # the spec's: its inputs and outputs in the reference's order


class CaseDict(_CaseOptional):
    model: str
    identifier: str
    index: int
    framework: str
    format: str
    metric: str
    spec: str
    source: str


class DeviceDict(TypedDict):
    kind: str  # host, android, ios, ssh
    id: str
    name: str
    hash: str
    abi: str
    os: str


class _Judged(TypedDict, total=False):
    comparison: ComparisonState
    verdicts: list[VerdictDict]


class Results(_Judged):
    """What an item's recorder measured (and, in A/B mode, how it was judged)."""

    metrics: list[MetricDict]
    operators: list[OperatorDict]
    extra: dict[str, Any]  # framework versions, A/B control samples, traces


class Payload(Results):
    """An item's record as its test report carries it to the controller."""

    case: CaseDict | None
    device: DeviceDict | None
    device_state: dict[str, float]


class ItemRecord(Payload):
    """One item of a run file."""

    nodeid: str
    outcome: str  # passed, failed, skipped, error
    duration: float


class CommitDict(TypedDict):
    id: str
    branch: str | None
    time: str | None
    dirty: bool


class BuildInfo(TypedDict):
    """The commit of a framework or model repository a run's program was built from
    (continuous/builds.py writes it, ``--aibench-build-info`` reads it)."""

    repo: str
    id: str
    time: str
    subject: str


BUILD_KEYS = ("repo", "id", "time", "subject")


class _RunOptional(TypedDict, total=False):
    id: str  # runs written before the history store had none
    build: BuildInfo  # runs of a build by ``aibench commits``


class RunFile(_RunOptional):
    format: str
    version: int
    created: str
    machine: dict[str, Any]
    commit: CommitDict | None
    plugin: dict[str, str]
    items: list[ItemRecord]
