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
sides get the CPUs they share). A golden file of token ids (a JSON list) fails the item where
greedy decoding leaves it (runners/generating.py).
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

from ..errors import RunnerError, Unsupported
from ..generation import GENERATION, Generation, GenerationShape
from ..spec.model import Case
from .base import RunContext
from .generating import prompt_ids, random_ids, record_generations
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
        prompt = prompt_ids(context, shape, vocabulary)
        context.recorder.extra["generation"] = {
            "prompt_tokens": len(prompt),
            "new_tokens": shape.new_tokens,
            "context_depth": shape.context_depth,
            "search": "greedy",
            "num_threads": threads or "onnxruntime's default: one per core",
            "onnxruntime_genai": str(og.__version__),
        }
        record_generations(context, lambda: _generate(og, model, prompt, shape, vocabulary))
        cold.memory()


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


def _generate(
    og: Any, model: Any, prompt: list[int], shape: GenerationShape, vocabulary: int
) -> Generation:
    """One greedy generation on a fresh generator, its steps timed."""
    params = og.GeneratorParams(model)
    params.set_search_options(
        max_length=shape.context_depth + len(prompt) + shape.new_tokens, do_sample=False
    )
    generator = og.Generator(model, params)
    if shape.context_depth:
        generator.append_tokens(random_ids(shape.seed + 1, shape.context_depth, vocabulary))
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
