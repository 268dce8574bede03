"""FAI-PEP's older test forms, rewritten into the one form the rest of the plugin reads.

- ``"arguments": "..."`` becomes ``"commands": ["{program} ..."]``;
- ``"command": "..."`` becomes ``"commands": ["..."]``;
- ``"commands": {"caffe2": {"flag": "value"}}`` (extra flags for a framework's own command
  composer) moves to ``"framework_flags"`` and leaves ``commands`` empty;
- ``"inputs": {"x": {"shapes": [s1, s2, ...]}}`` with N shapes becomes N tests with one shape each.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..errors import SpecError


def normalise_commands(test: Mapping[str, Any], source: str, where: str) -> dict[str, Any]:
    """``test`` with its command in the one list form; the legacy keys are removed."""
    result = dict(test)
    given = [key for key in ("commands", "command", "arguments") if key in result]
    if len(given) > 1:
        raise SpecError(
            source,
            where,
            f"the test has both {given[0]!r} and {given[1]!r}; they are alternative forms of its "
            "command, keep one",
        )
    if "arguments" in result:
        result["commands"] = ["{program} " + result.pop("arguments")]
    elif "command" in result:
        result["commands"] = [result.pop("command")]
    elif isinstance(result.get("commands"), Mapping):
        result["framework_flags"] = result.pop("commands")
    result.setdefault("commands", [])
    return result


def _shape_count(inputs: Mapping[str, Any], source: str, where: str) -> int:
    counts = {name: len(spec["shapes"]) for name, spec in inputs.items()}
    first_name, first_count = next(iter(counts.items()))
    for name, count in counts.items():
        if count != first_count:
            raise SpecError(
                source,
                f"{where}.inputs.{name}.shapes",
                f"expected {first_count} shape(s), as input {first_name!r} lists, found {count}; "
                "every input must list one shape per case",
            )
        ranks = {len(shape) for shape in inputs[name]["shapes"]}
        if len(ranks) > 1:
            raise SpecError(
                source,
                f"{where}.inputs.{name}.shapes",
                f"expected shapes of one rank, found ranks {sorted(ranks)}",
            )
    return first_count


def split_shapes(test: Mapping[str, Any], source: str, where: str) -> list[dict[str, Any]]:
    """One test per listed input shape (just ``test`` itself when it has no ``inputs``)."""
    inputs = test.get("inputs")
    if not inputs:
        return [dict(test)]
    count = _shape_count(inputs, source, where)
    # Copy the test without its shape lists: copying all N shapes for each of N cases made
    # collection quadratic (8,000 shapes took minutes).
    rest = copy.deepcopy({key: value for key, value in test.items() if key != "inputs"})
    others = {
        name: {key: value for key, value in spec.items() if key != "shapes"}
        for name, spec in inputs.items()
    }
    return [
        {
            **copy.deepcopy(rest),
            "inputs": {
                name: {
                    **copy.deepcopy(others[name]),
                    "shapes": [copy.deepcopy(spec["shapes"][index])],
                }
                for name, spec in inputs.items()
            },
        }
        for index in range(count)
    ]
