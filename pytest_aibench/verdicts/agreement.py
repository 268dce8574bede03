"""Agreement across frameworks (``--aibench-reference FRAMEWORK``, or a spec's ``reference``
field for its network): one framework's outputs are the golden of the others, for the same
network, inputs and device.

Items of one network are those with the same model name, test identifier and device (the
repository's ONNX, LiteRT and PyTorch specs of one model share them). Each in-process item
keeps its outputs in a file while the run goes on (kept_outputs.py: items may run in other
xdist workers); when the run ends, the controller compares every item with its group's
reference item (``agree``) and adds the error metrics a golden file gives today, as
``"<output> vs <reference>"`` metrics. Pure: the outputs come through ``agree``'s caller.

Tensors pair by what they are, not by what a converter named them: inputs by position (each
random input is drawn from a generator seeded by its position, runners/inprocess.py), outputs by
name where every name matches, else by position; a spec's ``match`` lists its inputs and outputs
in the reference's order where a converter reordered them too. A spec's ``layout`` of ``"NHWC"``
(a channels-last conversion, as LiteRT models of PyTorch networks are) makes its 4-D inputs and
outputs compare in channels-first order with the others'. Two items whose inputs differ (shape,
type, or source: random numbers or a file's contents) are not compared, and the note says which
input differs and what to write in the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..metrics import MetricRecord
from ..records import ItemRecord
from ..tensors import channels_first, channels_first_shape
from .golden import GoldenMismatch, compare
from .rules import Tolerance

GroupKey = tuple[str, str, str]  # model, test identifier, device


@dataclass
class Row:
    """One network on one device: each framework's largest error against the reference."""

    key: GroupKey
    reference: str
    errors: dict[str, float | None] = field(default_factory=dict)  # framework: max abs error
    cosine: dict[str, float | None] = field(default_factory=dict)
    # generated tokens: framework -> the first position where they differ, None where they agree
    divergence: dict[str, int | None] = field(default_factory=dict)
    beyond: set[str] = field(default_factory=set)  # frameworks beyond the tolerance
    note: str = ""


def _key(item: ItemRecord) -> GroupKey | None:
    case: Mapping[str, Any] = item.get("case") or {}
    device: Mapping[str, Any] = item.get("device") or {}
    if not case.get("model"):
        return None
    return str(case["model"]), str(case.get("identifier")), str(device.get("hash", ""))


Outputs = Callable[[ItemRecord], "Mapping[str, Any] | None"]  # an item's kept outputs


def agree(
    items: Iterable[ItemRecord], default: str | None, tolerance: Tolerance, outputs: Outputs
) -> list[Row]:
    """Compare and record; the rows of the agreement matrix, one per network whose spec names a
    reference, or ``default`` (--aibench-reference) where none does. ``outputs`` gives each
    item's kept outputs (kept_outputs.read), ``None`` for an item that kept none."""
    kept = {item["nodeid"]: found for item in items if (found := outputs(item)) is not None}
    groups: dict[GroupKey, list[ItemRecord]] = {}
    for item in items:
        if item["nodeid"] in kept and (key := _key(item)) is not None:
            groups.setdefault(key, []).append(item)
    return [
        row
        for key, group in sorted(groups.items())
        if (reference := _reference(group, default)) is not None
        and (row := _agree_group(key, group, reference, tolerance, kept)) is not None
    ]


def _reference(group: list[ItemRecord], default: str | None) -> str | None:
    """The reference a spec named for the network (collection allows one), else ``default``."""
    named = [item["case"].get("reference") for item in group if item["case"]]
    return next((name for name in named if name), default)


def _framework(item: ItemRecord) -> str:
    case: Mapping[str, Any] = item.get("case") or {}
    return str(case.get("framework") or "?")


def _agree_group(
    key: GroupKey,
    group: list[ItemRecord],
    reference: str,
    tolerance: Tolerance,
    kept: Mapping[str, Mapping[str, Any]],
) -> Row | None:
    references = [item for item in group if _framework(item) == reference]
    others = [item for item in group if _framework(item) != reference]
    if not others:
        return None
    row = Row(key, reference)
    if not references:
        row.note = f"no {reference} item of this network ran"
        return row
    golden = _channels_first(references[0], kept[references[0]["nodeid"]])
    row.errors[reference], row.cosine[reference] = 0.0, 1.0
    for item in others:
        framework = _framework(item)
        if _layout(item) != _layout(references[0]) and not row.note:
            row.note = "NHWC tensors compared as NCHW"
        if (different := _other_inputs(item, references[0])) is not None:
            row.errors[framework] = None
            row.note = f"not compared: {different}"
            continue
        actual = _channels_first(item, kept[item["nodeid"]])
        worst, cosine = _compare(item, actual, golden, reference, tolerance, row)
        row.errors[framework], row.cosine[framework] = worst, cosine
    return row


def _layout(item: ItemRecord) -> str:
    case: Mapping[str, Any] = item.get("case") or {}
    return str(case.get("layout") or "NCHW")


def _inputs(item: ItemRecord) -> list[tuple[str, list[int], str, str]]:
    """The item's inputs in the order they pair: name, shape in channels-first order, type and
    source (``random``, or a file's md5)."""
    inputs: Mapping[str, Any] = (item.get("extra") or {}).get("inputs") or {}
    return [
        (
            name,
            channels_first_shape(value["shape"], _layout(item)),
            str(value.get("type", "")),
            str(value.get("source", "random")),
        )
        for name, value in inputs.items()
    ]


def _other_inputs(item: ItemRecord, reference: ItemRecord) -> str | None:
    """Why ``item`` ran other inputs than ``reference``, in words a spec can act on; ``None``
    when they ran the same."""
    mine, theirs = _inputs(item), _inputs(reference)
    who, whom = _framework(item), _framework(reference)
    if len(mine) != len(theirs):
        return f"{who} has {len(mine)} inputs, {whom} {len(theirs)}"
    for position, (own, other) in enumerate(zip(mine, theirs, strict=True)):
        if own[1:] == other[1:]:
            continue
        hint = (
            'declare "layout": "NHWC" in a channels-last model\'s spec'
            if sorted(own[1]) == sorted(other[1])
            else 'give both the same shapes (the test\'s "inputs") or the same input file'
        )
        if any(own[1:] == entry[1:] for entry in theirs):
            hint = (
                "if a converter reordered the inputs, list them in the reference's order "
                'under "match": {"inputs": [...]} in its spec'
            )
        return (
            f"{who}'s input {position} {_shown(own)} differs from {whom}'s {_shown(other)}: {hint}"
        )
    return None


def _shown(entry: tuple[str, list[int], str, str]) -> str:
    name, shape, dtype, source = entry
    return f"({name!r}, {shape} {dtype}, {source})"


def _channels_first(item: ItemRecord, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The item's outputs in channels-first order."""
    return {name: channels_first(value, _layout(item)) for name, value in outputs.items()}


def _compare(
    item: ItemRecord,
    actual: dict[str, Any],
    golden: dict[str, Any],
    reference: str,
    tolerance: Tolerance,
    row: Row,
) -> tuple[float | None, float | None]:
    """Record ``"<output> vs <reference>"`` error metrics on ``item`` (its ``actual`` outputs);
    its worst max abs error and its lowest cosine similarity."""
    case: Mapping[str, Any] = item.get("case") or {}
    pairs = _pairs(actual, golden, (case.get("match") or {}).get("outputs"))
    if pairs is None:
        row.note = (
            f"not compared: {_framework(item)}'s outputs {list(actual)} do not pair with "
            f"{reference}'s {list(golden)}: list yours in the reference's order under "
            '"match": {"outputs": [...]} in its spec'
        )
        return None, None
    worst: float | None = None
    lowest: float | None = None
    for name, got, want in pairs:
        if _tokens(got) and _tokens(want):
            worst = max(worst or 0.0, _token_divergence(item, name, got, want, reference, row))
            continue
        try:
            comparison = compare(name, got, want, tolerance)
        except GoldenMismatch as exc:  # shapes that do not match
            row.note = str(exc)
            return None, None
        for metric, value in comparison.metrics().items():
            if value is not None:
                record = MetricRecord(f"{name} vs {reference}", metric, "", [value])
                item["metrics"].append(record.to_dict())
        worst = max(worst or 0.0, comparison.max_abs)
        if comparison.cosine is not None:
            lowest = comparison.cosine if lowest is None else min(lowest, comparison.cosine)
        if not comparison.passed:
            row.beyond.add(_framework(item))
    return worst, lowest


def _tokens(value: Any) -> bool:
    """Generated token ids (a generation item's kept output): compared by position, not by
    their numbers' distance."""
    import numpy as np

    array = np.asarray(value)
    return array.ndim == 1 and np.issubdtype(array.dtype, np.integer)


def _token_divergence(
    item: ItemRecord, name: str, got: Any, want: Any, reference: str, row: Row
) -> float:
    """Record the first position where ``item``'s tokens leave the reference's (its length
    where they all agree) as ``"<name> vs <reference> first_divergence"``; 0.0, or 1.0 where
    they differ, for the row's worst."""
    framework = _framework(item)
    length = min(len(got), len(want))
    position = next(
        (index for index in range(length) if int(got[index]) != int(want[index])),
        None if len(got) == len(want) else length,
    )
    found = length if position is None else position
    record = MetricRecord(f"{name} vs {reference}", "first_divergence", "tokens", [found])
    item["metrics"].append(record.to_dict())
    row.divergence[framework] = position
    if position is not None:
        row.beyond.add(framework)
    return 0.0 if position is None else 1.0


def _pairs(
    actual: dict[str, Any], golden: dict[str, Any], order: list[str] | None = None
) -> list[tuple[str, Any, Any]] | None:
    """By name where every output name matches, else in the spec's ``match.outputs`` order,
    else by position (frameworks name outputs their own way: ``y``, ``output_0``,
    ``StatefulPartitionedCall:0``)."""
    if set(actual) == set(golden):
        return [(name, actual[name], golden[name]) for name in golden]
    names = order or list(actual)
    if len(names) == len(golden) and set(names) <= set(actual):
        return [
            (name, actual[name], want) for name, want in zip(names, golden.values(), strict=True)
        ]
    return None
