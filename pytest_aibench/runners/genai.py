"""onnxruntime-genai in process on the host: a generative model's folder (its
``genai_config.json`` and the files it names, all under ``model.files``) measured as
``"metric": "generation"`` (generation.py defines each figure).

The model is loaded once per item (``NET load``). Each repetition is one greedy generation on
a fresh generator: the context before the prompt (``generation.context_depth`` tokens, not
timed), then the prompt, then ``generation.new_tokens`` new tokens, one ``generate_next_token``
each. ``warmup`` repetitions come first, untimed; then ``iter`` timed ones, each a sample of
every figure (token_latency: a sample per token). The prompt is the token ids of the input file
named ``prompt`` (a JSON list), else ``generation.prompt_tokens`` random ids (``seed``); no
tokenizer is involved. ``genai.num_threads`` sets ONNX Runtime's intra-op threads (in A/B both
sides get the CPUs they share). A golden file of token ids (a JSON list) fails the item where greedy
decoding leaves it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import kept_outputs
from ..errors import RunnerError, Unsupported
from ..generation import (
    GENERATION,
    Generation,
    GenerationShape,
    first_divergence,
    generation_records,
)
from ..spec.model import Case
from .base import RunContext
from .inprocess import ColdStart, missing, quiet_import

CONFIG = "genai_config.json"


class GenaiRunner:
    name = "genai"

    def commands(self, case: Case, program: str | None) -> list[str]:
        return []

    def unavailable(self, case: Case, program: str | None) -> str | None:
        return missing("onnxruntime_genai", "genai")

    def run(self, context: RunContext) -> None:
        if not context.device.local:
            raise Unsupported("onnxruntime-genai runs in process on the host only")
        if context.case.metric != GENERATION:
            raise RunnerError(
                f'{context.case.where}: a generative model is measured with "metric": '
                f'"{GENERATION}", not {context.case.metric!r}'
            )
        og = quiet_import("onnxruntime_genai")
        shape = GenerationShape.of(context.case.test)
        threads = (context.case.test.get("genai") or {}).get("num_threads") or context.threads
        with _model_folder(context) as folder:
            cold = ColdStart(context)
            model = cold.load(lambda: og.Model(_config(og, folder, threads)))
            cold.loaded()
            vocabulary = int(json.loads((folder / CONFIG).read_text())["model"]["vocab_size"])
        prompt = _prompt(context, shape, vocabulary)
        context.recorder.extra["generation"] = {
            "prompt_tokens": len(prompt),
            "new_tokens": shape.new_tokens,
            "context_depth": shape.context_depth,
            "search": "greedy",
            "num_threads": threads or "onnxruntime's default: one per core",
            "onnxruntime_genai": str(og.__version__),
        }
        for _ in range(context.warmup):
            context.time_left()
            _generate(og, model, prompt, shape, vocabulary)
        generated = []
        for _ in range(context.iterations):
            context.time_left()
            generation = _generate(og, model, prompt, shape, vocabulary)
            for record in generation_records(generation):
                context.recorder.add(record)
            generated.append(generation.tokens)
        cold.memory()
        tokens = generated[-1] if generated else []
        context.recorder.extra["generation"]["tokens"] = tokens
        if context.outputs_dir is not None:  # the agreement across frameworks compares them
            kept = kept_outputs.keep(context.outputs_dir, {"tokens": tokens})
            context.recorder.extra["outputs"] = kept
        _check_tokens(context, generated)


@contextlib.contextmanager
def _model_folder(context: RunContext) -> Iterator[Path]:
    """The model's files side by side under the names its config gives them (the cache keeps
    each file where it likes)."""
    files = {ref.filename: path for ref, path in context.files.model}
    if CONFIG not in files:
        raise RunnerError(
            f"{context.case.spec_path} model.files: an onnxruntime-genai model needs its "
            f"{CONFIG} among its files (found {sorted(files)})"
        )
    with tempfile.TemporaryDirectory(prefix="aibench-genai-") as name:
        folder = Path(name)
        for filename, path in files.items():
            os.symlink(Path(path).resolve(), folder / filename)
        yield folder


def _config(og: Any, folder: Path, threads: int | None) -> Any:
    """The model's config, with the test's ``genai.num_threads`` (in A/B: the CPUs both sides
    share) as its decoder session's intra-op threads."""
    config = og.Config(str(folder))
    if threads:
        options = {"session_options": {"intra_op_num_threads": int(threads)}}
        config.overlay(json.dumps({"model": {"decoder": options}}))
    return config


def _prompt(context: RunContext, shape: GenerationShape, vocabulary: int) -> list[int]:
    """The prompt file's token ids, else random ones (the last id is often the end of
    sequence: never drawn)."""
    for ref, path in context.files.inputs:
        if ref.name == "prompt":
            tokens = _token_ids(path, f"{context.case.where} {ref.where}")
            if shape.prompt_tokens not in (None, len(tokens)):
                raise RunnerError(
                    f"{context.case.where}: generation.prompt_tokens is {shape.prompt_tokens} "
                    f"but the prompt file holds {len(tokens)} tokens; give one of them"
                )
            return tokens
    import numpy as np

    length = shape.prompt_tokens or 0
    if length < 1:
        raise RunnerError(
            f"{context.case.where}: give generation.prompt_tokens (how many prompt tokens) or "
            "an input file named 'prompt' (a JSON list of token ids)"
        )
    rng = np.random.default_rng(shape.seed)
    return [int(token) for token in rng.integers(1, vocabulary - 1, length)]


def _token_ids(path: Path, where: str) -> list[int]:
    try:
        tokens = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RunnerError(f"{where}: cannot read token ids from {path}: {exc}") from None
    if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
        raise RunnerError(f"{where}: {path} must hold a JSON list of token ids (integers)")
    return tokens


def _generate(
    og: Any, model: Any, prompt: list[int], shape: GenerationShape, vocabulary: int
) -> Generation:
    """One greedy generation on a fresh generator, its steps timed."""
    import numpy as np

    params = og.GeneratorParams(model)
    params.set_search_options(
        max_length=shape.context_depth + len(prompt) + shape.new_tokens, do_sample=False
    )
    generator = og.Generator(model, params)
    if shape.context_depth:
        rng = np.random.default_rng(shape.seed + 1)
        generator.append_tokens(
            [int(t) for t in rng.integers(1, vocabulary - 1, shape.context_depth)]
        )
    clock = time.perf_counter_ns
    start = clock()
    generator.append_tokens(prompt)
    prefilled = clock()
    generator.generate_next_token()
    tokens = [int(generator.get_next_tokens()[0])]
    first = clock()
    token_us = []
    while len(tokens) < shape.new_tokens and not generator.is_done():
        step = clock()
        generator.generate_next_token()
        tokens.append(int(generator.get_next_tokens()[0]))
        token_us.append((clock() - step) / 1000.0)
    return Generation(
        prompt_tokens=len(prompt),
        prefill_us=(prefilled - start) / 1000.0,
        first_token_us=(first - start) / 1000.0,
        token_us=token_us,
        tokens=tokens,
    )


def _check_tokens(context: RunContext, generated: list[list[int]]) -> None:
    """Each golden file of token ids against every timed generation's tokens."""
    for ref, path in context.files.goldens:
        expected = _token_ids(path, f"{context.case.where} {ref.where}")
        for repetition, tokens in enumerate(generated):
            wrong = first_divergence(expected, tokens)
            if wrong:
                context.recorder.failures.append(
                    f"{context.case.where} {ref.where}: repetition {repetition}: {wrong}"
                )
                break
