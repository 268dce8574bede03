"""ExecuTorch's LLM runner in process on the host: a generation item (``"metric":
"generation"``) of a program made for it (``files.model``) and its tokenizer
(``files.tokenizer``: a Hugging Face tokenizer.json, tiktoken or sentencepiece file, as the
runner reads them), through ExecuTorch's own Python bindings (``TextLLMRunner``).

The runner takes text: a prompt of token ids (the ``prompt`` input file, or random ids) is
given as the text of their pieces in the tokenizer's vocabulary, and what the runner counted
as prompt tokens is recorded. Each repetition resets the runner and generates
``generation.new_tokens`` tokens greedily (temperature 0), echoing the prompt: every arrival in
the runner's token callback is timed by this process's clock (microseconds; the runner's own
stats have whole milliseconds). The echo comes once the prompt is tokenized, so the prefill is
from the echo to the first new token; the time to first token starts at the call, so it
includes tokenizing, as ExecuTorch's own figure does. Their records say so.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

from ..errors import RunnerError, Unsupported
from ..generation import Generation, GenerationShape
from .base import RunContext
from .generating import prompt_ids, random_ids, record_generations
from .inprocess import ColdStart, model_path, quiet_import

DEFINITIONS = {
    "time_to_first_token": "ExecuTorch's LLM runner: from handing it the prompt's text until "
    "its token callback receives the first new token: tokenizing the prompt, its forward pass "
    "and the first token's selection",
    "prefill_latency": "ExecuTorch's LLM runner: from its echo of the prompt (once tokenized) "
    "until its token callback receives the first new token: the prompt's forward pass and the "
    "first token's selection",
    "prefill_speed": "prompt tokens, as the runner counted them / prefill_latency",
}


def run_generation(context: RunContext) -> None:
    if not context.device.local:
        raise Unsupported("ExecuTorch's LLM runner in process runs on the host only")
    tokenizer = context.files.model_files().get("tokenizer")
    if tokenizer is None:
        raise RunnerError(
            f"{context.case.spec_path} model.files: a generation test of an ExecuTorch program "
            "runs it with ExecuTorch's LLM runner, which needs its tokenizer as 'tokenizer'"
        )
    llm = quiet_import("executorch.extension.llm.runner")
    shape = GenerationShape.of(context.case.test)
    program = model_path(context, "model", "program")
    weights = context.files.model_files().get("weights")
    cold = ColdStart(context)
    runner = cold.load(
        lambda: llm.TextLLMRunner(str(program), str(tokenizer), str(weights) if weights else None)
    )
    cold.loaded()
    pieces = _pieces(Path(tokenizer), context)
    ids = {piece: index for index, piece in enumerate(pieces)}
    prompt = _text(prompt_ids(context, shape, len(pieces)), pieces, context)
    depth = _text(random_ids(shape.seed + 1, shape.context_depth, len(pieces)), pieces, context)
    config = llm.GenerationConfig(max_new_tokens=shape.new_tokens, temperature=0.0, echo=True)
    context.recorder.extra["generation"] = {
        "new_tokens": shape.new_tokens,
        "context_depth": shape.context_depth,
        "search": "greedy",
        "runner": "ExecuTorch TextLLMRunner",
    }

    def generate() -> Generation:
        return _generate(runner, config, prompt, depth, ids)

    record_generations(context, generate, DEFINITIONS)
    cold.memory()


def _pieces(tokenizer: Path, context: RunContext) -> list[str]:
    """Each token id's piece, from a Hugging Face tokenizer.json (its vocabulary and added
    tokens): how a prompt of ids becomes text, and a generated piece an id again."""
    try:
        data = json.loads(tokenizer.read_text(encoding="utf-8"))
        vocabulary = {**data["model"]["vocab"]}
        vocabulary.update({token["content"]: token["id"] for token in data.get("added_tokens", [])})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunnerError(
            f"{context.case.where}: token ids become text through a Hugging Face "
            f"tokenizer.json's vocabulary; {tokenizer} has none ({exc})"
        ) from None
    pieces = [""] * (max(vocabulary.values()) + 1)
    for piece, index in vocabulary.items():
        pieces[index] = piece
    return pieces


def _text(tokens: list[int], pieces: list[str], context: RunContext) -> str:
    unknown = [token for token in tokens if not 0 <= token < len(pieces) or not pieces[token]]
    if unknown:
        raise RunnerError(
            f"{context.case.where}: token ids {unknown[:5]} have no piece in the tokenizer"
        )
    return "".join(pieces[token] for token in tokens)


def _generate(runner: Any, config: Any, prompt: str, depth: str, ids: dict[str, int]) -> Generation:
    """One greedy generation from a reset runner (the context, if any, prefilled first)."""
    runner.reset()
    if depth:
        runner.prefill(depth, config)
    arrivals: list[int] = []
    pieces: list[str] = []
    stats: list[Any] = []

    def on_token(piece: str) -> None:
        arrivals.append(time.perf_counter_ns())
        pieces.append(piece)

    start = time.perf_counter_ns()
    runner.generate(prompt, config, token_callback=on_token, stats_callback=stats.append)
    if len(arrivals) < 2 or pieces[0] != prompt:
        raise RunnerError(
            "ExecuTorch's LLM runner did not echo the prompt and then generate: its callback "
            f"received {len(pieces)} pieces"
        )
    echoed, *tokens = arrivals
    return Generation(
        prompt_tokens=int(stats[0].num_prompt_tokens) if stats else 0,
        prefill_us=(tokens[0] - echoed) / 1000.0,
        first_token_us=(tokens[0] - start) / 1000.0,
        token_us=[(later - earlier) / 1000.0 for earlier, later in itertools.pairwise(tokens)],
        tokens=[ids.get(piece, -1) for piece in pieces[1:]],
    )
