"""What every in-process generation runner shares: the prompt, the warm-up and timed
generations recorded as generation.py defines them, the tokens kept for the agreement, and the
golden tokens checked."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from .. import kept_outputs
from ..errors import RunnerError
from ..generation import Generation, GenerationShape, first_divergence, generation_records
from .base import RunContext


def prompt_ids(context: RunContext, shape: GenerationShape, vocabulary: int) -> list[int]:
    """The token ids of the input file named ``prompt``, else ``generation.prompt_tokens``
    random ones (never the first or the last id: often the start and the end of sequence)."""
    for ref, path in context.files.inputs:
        if ref.name == "prompt":
            tokens = token_ids(path, f"{context.case.where} {ref.where}")
            if shape.prompt_tokens not in (None, len(tokens)):
                raise RunnerError(
                    f"{context.case.where}: generation.prompt_tokens is {shape.prompt_tokens} "
                    f"but the prompt file holds {len(tokens)} tokens; give one of them"
                )
            return tokens
    length = shape.prompt_tokens or 0
    if length < 1:
        raise RunnerError(
            f"{context.case.where}: give generation.prompt_tokens (how many prompt tokens) or "
            "an input file named 'prompt' (a JSON list of token ids)"
        )
    return random_ids(shape.seed, length, vocabulary)


def random_ids(seed: int, count: int, vocabulary: int) -> list[int]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [int(token) for token in rng.integers(1, vocabulary - 1, count)]


def token_ids(path: Path, where: str) -> list[int]:
    try:
        tokens = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RunnerError(f"{where}: cannot read token ids from {path}: {exc}") from None
    if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
        raise RunnerError(f"{where}: {path} must hold a JSON list of token ids (integers)")
    return tokens


def record_generations(
    context: RunContext,
    generate: Callable[[], Generation],
    definitions: Mapping[str, str] | None = None,
) -> None:
    """``warmup`` untimed generations, then ``iter`` timed ones recorded (a runtime whose
    figures mean something else gives their ``definitions``); the last one's tokens kept, and
    every one's checked against the golden tokens."""
    for _ in range(context.warmup):
        context.time_left()
        generate()
    generated = []
    for _ in range(context.iterations):
        context.time_left()
        generation = generate()
        for record in generation_records(generation):
            record.definition = (definitions or {}).get(record.metric, record.definition)
            context.recorder.add(record)
        generated.append(generation.tokens)
    tokens = generated[-1] if generated else []
    context.recorder.extra.setdefault("generation", {})["tokens"] = tokens
    if context.outputs_dir is not None:  # the agreement across frameworks compares them
        context.recorder.extra["outputs"] = kept_outputs.keep(
            context.outputs_dir, {"tokens": tokens}
        )
    _check_tokens(context, generated)


def _check_tokens(context: RunContext, generated: list[list[int]]) -> None:
    """Each golden file of token ids against every timed generation's tokens."""
    for ref, path in context.files.goldens:
        expected = token_ids(path, f"{context.case.where} {ref.where}")
        for repetition, tokens in enumerate(generated):
            wrong = first_divergence(expected, tokens)
            if wrong:
                context.recorder.failures.append(
                    f"{context.case.where} {ref.where}: repetition {repetition}: {wrong}"
                )
                break
