"""What a judgement is asked to apply: a ``--aibench-fail-on`` rule, a golden tolerance. Light
(two small records and their parsers), so that the options check them as they are given
without loading the judgements."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4


@dataclass(frozen=True)
class Rule:
    """``--aibench-fail-on "NET latency:p50:3%"``: metric key, statistic, minimum effect."""

    key: str
    statistic: str = "p50"
    min_effect: float = 0.05

    @classmethod
    def parse(cls, text: str) -> Rule:
        parts = text.rsplit(":", 2)
        if len(parts) != 3 or not parts[0].strip():
            raise ValueError(
                f"expected KEY:STATISTIC:PERCENT such as 'NET latency:p50:3%', found {text!r}"
            )
        key, statistic, effect = (part.strip() for part in parts)
        if statistic != "mean" and not re.fullmatch(r"p\d+(\.\d+)?", statistic):
            raise ValueError(f"statistic {statistic!r} in {text!r}: use mean or pX (p50, p90)")
        try:
            value = float(effect.rstrip("%")) / (100 if effect.endswith("%") else 1)
        except ValueError:
            raise ValueError(
                f"minimum effect {effect!r} in {text!r}: use a percentage such as 3%"
            ) from None
        return cls(key, statistic, value)


@dataclass(frozen=True)
class Tolerance:
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """``"atol=1e-6,rtol=1e-5"`` (either part may be left out); ValueError otherwise."""
        values: dict[str, float] = {}
        for part in filter(None, (piece.strip() for piece in text.split(","))):
            key, _, number = part.partition("=")
            if key.strip() not in ("atol", "rtol") or not number:
                raise ValueError(f"expected atol=X and/or rtol=Y, found {part!r}")
            values[key.strip()] = float(number)
        return cls(**values)

    def overriding(self, spec: Mapping[str, Any] | None) -> Tolerance:
        spec = spec or {}
        return Tolerance(float(spec.get("atol", self.atol)), float(spec.get("rtol", self.rtol)))
