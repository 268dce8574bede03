"""Generative models: what a ``"metric": "generation"`` item records, each metric defined once.

Tools define these numbers differently (whether time to first token includes tokenizing the
prompt, whether the first token counts in decode speed), so every record carries its
definition (``definition`` in the run file) and which way is better (``direction``). Every
runner of generation items records through :func:`generation_records`. Pure.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .metrics import MetricRecord

GENERATION = "generation"  # the spec's metric, and the items' mark


@dataclass(frozen=True)
class Definition:
    unit: str
    direction: Literal["lower", "higher"]
    text: str


DEFINITIONS: Mapping[str, Definition] = {
    "time_to_first_token": Definition(
        "us",
        "lower",
        "from handing the prompt's token ids to the generator until the first new token id is "
        "returned: the prompt's forward pass and the first token's selection; not tokenizing, "
        "not creating the generator and its cache, not the context before the prompt",
    ),
    "prefill_latency": Definition(
        "us", "lower", "the prompt's forward pass alone, all its tokens at once"
    ),
    "prefill_speed": Definition("tokens/s", "higher", "prompt tokens / prefill_latency"),
    "decode_speed": Definition(
        "tokens/s",
        "higher",
        "new tokens after the first / the time they took; the first new token is in "
        "time_to_first_token, not here (as MLPerf Client counts)",
    ),
    "token_latency": Definition(
        "us",
        "lower",
        "each new token after the first: one forward pass over the cache and its selection; a "
        "sample per token, so p50 and p90 are inter-token latencies",
    ),
}

# gated by default, as latency is: the headline figures of every generation tool
GATED = ("time_to_first_token", "prefill_speed", "decode_speed")


@dataclass(frozen=True)
class GenerationShape:
    """A test's ``generation`` object: how long a prompt, how many new tokens, how much
    context already in the cache before the prompt (llama-bench's depth), and the seed of a
    random prompt."""

    prompt_tokens: int | None = None  # None: the prompt file's length
    new_tokens: int = 32
    context_depth: int = 0
    seed: int = 0

    @classmethod
    def of(cls, test: Mapping[str, Any]) -> GenerationShape:
        given = test.get("generation") or {}
        prompt = given.get("prompt_tokens")
        return cls(
            prompt_tokens=None if prompt is None else int(prompt),
            new_tokens=int(given.get("new_tokens", cls.new_tokens)),
            context_depth=int(given.get("context_depth", 0)),
            seed=int(given.get("seed", 0)),
        )


@dataclass
class Generation:
    """One timed generation: its prefill, its first token and each later token (us)."""

    prompt_tokens: int
    prefill_us: float
    first_token_us: float
    token_us: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)


def generation_records(generation: Generation) -> list[MetricRecord]:
    """The metric records (one sample each; a sample per token for token_latency) of one
    generation, with their definitions."""
    values: dict[str, list[float]] = {
        "time_to_first_token": [generation.first_token_us],
        "prefill_latency": [generation.prefill_us],
        "prefill_speed": [_per_second(generation.prompt_tokens, generation.prefill_us)],
        "token_latency": list(generation.token_us),
    }
    if generation.token_us:
        spent = math.fsum(generation.token_us)
        values["decode_speed"] = [_per_second(len(generation.token_us), spent)]
    return [generation_metric(name, samples) for name, samples in values.items()]


def generation_metric(name: str, samples: Sequence[float]) -> MetricRecord:
    """A ``NET <name>`` record of these samples, with the figure's unit, direction and
    definition."""
    definition = DEFINITIONS[name]
    return MetricRecord(
        "NET",
        name,
        definition.unit,
        list(samples),
        direction=definition.direction,
        definition=definition.text,
    )


def _per_second(tokens: int, microseconds: float) -> float:
    return tokens / (microseconds / 1e6) if microseconds > 0 else math.inf


def first_divergence(expected: Sequence[int], generated: Sequence[int]) -> str | None:
    """Where greedy decoding left the golden tokens, said for a failure; None if it did not."""
    for position, (want, got) in enumerate(zip(expected, generated, strict=False)):
        if want != got:
            return (
                f"token {position} of {len(expected)} differs from the golden tokens: expected "
                f"{want}, generated {got} (the {position} before it agree)"
            )
    if len(generated) < len(expected):
        return f"generated {len(generated)} tokens, the golden file has {len(expected)}"
    return None


# a generation test's lengths that may list several values, and the suffix each adds to the
# identifier of the items they make: p(rompt), n(ew tokens), d(epth)
_GENERATION_LISTS = {"prompt_tokens": "p", "new_tokens": "n", "context_depth": "d"}


def split_generation(test: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One test per combination of the lengths its ``generation`` object lists (prompt
    lengths, new tokens, context depths), as input shapes make one test each; the identifier
    of each names the values listed (``greedy-p64-n32``)."""
    generation = test.get("generation") or {}
    listed = {key: value for key, value in generation.items() if isinstance(value, list)}
    if not listed:
        return [dict(test)]
    variants = []
    for values in itertools.product(*listed.values()):
        chosen = dict(zip(listed, values, strict=True))
        suffix = "-".join(f"{_GENERATION_LISTS[key]}{value}" for key, value in chosen.items())
        variant = copy.deepcopy(dict(test))
        variant["generation"] = {**generation, **chosen}
        variant["identifier"] = f"{test.get('identifier', '{ID}')}-{suffix}"
        variants.append(variant)
    return variants
