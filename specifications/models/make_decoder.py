#!/usr/bin/env python3
"""Make a small random decoder-only language model for onnxruntime-genai, and its golden tokens.

The model is a transformer decoder with a key/value cache, built with ``onnx.helper`` from
seeded random weights (no tokenizer: prompts are token ids): token embedding, then per layer
causal multi-head self-attention over the cache and the new tokens, and a ReLU feed-forward
block, each with a residual connection; then the logits over the vocabulary, where the last
token (the end of sequence) is never likely, so that generation runs its whole length. It takes
``input_ids`` and ``attention_mask`` and the cache as ``past_key_values.N.key|value``, and gives
``logits`` and ``present.N.key|value``, the names its ``genai_config.json`` declares.

    genai/decoder/model.onnx          the graph and its weights (needs: onnx)
    genai/decoder/genai_config.json   onnxruntime-genai's description of it: greedy search
    genai/decoder/prompt.json         a prompt's token ids
    genai/decoder/tokens.json         the tokens greedy decoding generates after that prompt,
                                      computed with numpy alone (the golden tokens)

With ``--executorch``, the same decoder (the same weights, in torch) for ExecuTorch's LLM
runner instead, written to executorch/decoder/ unless --out says otherwise (needs: executorch):

    decoder.pte                       the network without a cache (the runner feeds it the
                                      whole sequence at each step), its sequence length
                                      dynamic, with the metadata methods the runner reads
    tokenizer.json                    a Hugging Face tokenizer with one piece per token id (a
                                      character each), so that a prompt of ids is a text
    prompt.json, tokens.json          as above

    python specifications/models/make_decoder.py [--layers N] [--hidden N] [--heads N]
                                                 [--vocab N] [--executorch] [--out DIR]

Other sizes make other models of the same kind (the files are byte-for-byte the same on every
run for the same sizes). No weights are downloaded; this script is their only source.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SEED = 11
PROMPT_TOKENS, NEW_TOKENS = 16, 16
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Sizes:
    layers: int = 2
    hidden: int = 64
    heads: int = 4
    vocab: int = 256
    context: int = 512  # the longest sequence (prompt + generated) the config allows

    @property
    def eos(self) -> int:
        return self.vocab - 1

    @property
    def head_size(self) -> int:
        return self.hidden // self.heads


def weights(sizes: Sizes) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    hidden = sizes.hidden

    def draw(*shape: int) -> np.ndarray:
        return np.asarray(rng.standard_normal(shape) / np.sqrt(shape[0]), dtype=np.float32)

    found = {"embed": draw(sizes.vocab, hidden) * np.float32(np.sqrt(sizes.vocab / hidden))}
    for layer in range(sizes.layers):
        for part in ("q", "k", "v", "o"):
            found[f"l{layer}.{part}"] = draw(hidden, hidden)
        found[f"l{layer}.up"] = draw(hidden, 4 * hidden)
        found[f"l{layer}.down"] = draw(4 * hidden, hidden)
    found["head"] = draw(hidden, sizes.vocab)
    # the last token is the end of sequence, which is never likely: generation runs its length
    found["head_bias"] = np.zeros(sizes.vocab, dtype=np.float32)
    found["head_bias"][sizes.eos] = -1e4
    return found


def model_bytes(sizes: Sizes) -> bytes:
    """The ONNX graph: opset 17, dynamic batch and sequence lengths."""
    from onnx import TensorProto, helper, numpy_helper

    graph = _Graph(helper)
    hidden, heads, head = sizes.hidden, sizes.heads, sizes.head_size
    graph.const("split_heads", np.array([0, 0, heads, head], dtype=np.int64))
    graph.const("join_heads", np.array([0, 0, hidden], dtype=np.int64))
    graph.const("scale", np.array(1 / np.sqrt(head), dtype=np.float32))
    graph.const("masked", np.array(-1e9, dtype=np.float32))
    graph.const("axes01", np.array([0, 1], dtype=np.int64))
    graph.const("axis0", np.array([0], dtype=np.int64))
    graph.const("axis1", np.array([1], dtype=np.int64))
    graph.const("one", np.array(1, dtype=np.int64))
    graph.const("zero", np.array(0, dtype=np.int64))
    graph.const("two", np.array([2], dtype=np.int64))
    graph.const("three", np.array([3], dtype=np.int64))
    for name, array in weights(sizes).items():
        graph.const(name, array)
    _causal_mask(graph)
    state = graph.op("Gather", ["embed", "input_ids"])
    for layer in range(sizes.layers):
        state = _attention(graph, layer, state)
        up = graph.op("Relu", [graph.op("MatMul", [state, f"l{layer}.up"])])
        state = graph.op("Add", [state, graph.op("MatMul", [up, f"l{layer}.down"])])
    graph.op("Add", [graph.op("MatMul", [state, "head"]), "head_bias"], "logits")

    cache: list[str | int] = ["batch", heads, "past", head]
    present: list[str | int] = ["batch", heads, "total", head]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
    ]
    outputs = [
        helper.make_tensor_value_info(
            "logits", TensorProto.FLOAT, ["batch", "sequence", sizes.vocab]
        )
    ]
    for layer in range(sizes.layers):
        for part in ("key", "value"):
            inputs.append(
                helper.make_tensor_value_info(
                    f"past_key_values.{layer}.{part}", TensorProto.FLOAT, cache
                )
            )
            outputs.append(
                helper.make_tensor_value_info(f"present.{layer}.{part}", TensorProto.FLOAT, present)
            )
    initializers = [numpy_helper.from_array(array, name) for name, array in graph.constants]
    onnx_graph = helper.make_graph(graph.nodes, "decoder", inputs, outputs, initializers)
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="pytest-aibench make_decoder.py",
    )
    model.ir_version = 8
    return bytes(model.SerializeToString())


class _Graph:
    """Nodes and constants, each node's output named after its position."""

    def __init__(self, helper: Any) -> None:
        self.helper = helper
        self.nodes: list[Any] = []
        self.constants: list[tuple[str, np.ndarray]] = []

    def const(self, name: str, array: np.ndarray) -> str:
        self.constants.append((name, array))
        return name

    def op(self, kind: str, inputs: list[str], output: str = "", **attributes: Any) -> str:
        output = output or f"{kind.lower()}_{len(self.nodes)}"
        self.nodes.append(self.helper.make_node(kind, inputs, [output], **attributes))
        return output


def _causal_mask(graph: _Graph) -> None:
    """``allowed`` [batch, 1, sequence, total]: each new token sees the cache, the new tokens up
    to itself, and no position the attention mask hides."""
    total = graph.op("Gather", [graph.op("Shape", ["attention_mask"]), "one"])
    sequence = graph.op("Gather", [graph.op("Shape", ["input_ids"]), "one"])
    rows = graph.op("Range", [graph.op("Sub", [total, sequence]), total, "one"])
    columns = graph.op("Range", ["zero", total, "one"])
    causal = graph.op(
        "LessOrEqual",
        [graph.op("Unsqueeze", [columns, "axis0"]), graph.op("Unsqueeze", [rows, "axis1"])],
    )
    visible = graph.op("Cast", ["attention_mask"], to=9)  # bool
    visible = graph.op("Unsqueeze", [visible, graph.const("axes12", np.array([1, 2]))])
    graph.op("And", [graph.op("Unsqueeze", [causal, "axes01"]), visible], "allowed")


def _attention(graph: _Graph, layer: int, state: str) -> str:
    def heads_of(part: str) -> str:
        projected = graph.op("MatMul", [state, f"l{layer}.{part}"])
        split = graph.op("Reshape", [projected, "split_heads"])
        return graph.op("Transpose", [split], perm=[0, 2, 1, 3])

    query = heads_of("q")
    names = {"k": "key", "v": "value"}
    cached = {
        part: graph.op(
            "Concat",
            [f"past_key_values.{layer}.{names[part]}", heads_of(part)],
            f"present.{layer}.{names[part]}",
            axis=2,
        )
        for part in ("k", "v")
    }
    keys_t = graph.op("Transpose", [cached["k"]], perm=[0, 1, 3, 2])
    scores = graph.op("Mul", [graph.op("MatMul", [query, keys_t]), "scale"])
    scores = graph.op("Where", ["allowed", scores, "masked"])
    attended = graph.op("MatMul", [graph.op("Softmax", [scores], axis=-1), cached["v"]])
    joined = graph.op(
        "Reshape", [graph.op("Transpose", [attended], perm=[0, 2, 1, 3]), "join_heads"]
    )
    return graph.op("Add", [state, graph.op("MatMul", [joined, f"l{layer}.o"])])


def genai_config(sizes: Sizes) -> dict[str, Any]:
    return {
        "model": {
            "bos_token_id": 0,
            "eos_token_id": sizes.eos,
            "pad_token_id": 0,
            "context_length": sizes.context,
            "vocab_size": sizes.vocab,
            "type": "llama",
            "decoder": {
                "filename": "model.onnx",
                "session_options": {"log_id": "aibench-decoder", "provider_options": []},
                "head_size": sizes.head_size,
                "hidden_size": sizes.hidden,
                "num_attention_heads": sizes.heads,
                "num_key_value_heads": sizes.heads,
                "num_hidden_layers": sizes.layers,
                "inputs": {
                    "input_ids": "input_ids",
                    "attention_mask": "attention_mask",
                    "past_key_names": "past_key_values.%d.key",
                    "past_value_names": "past_key_values.%d.value",
                },
                "outputs": {
                    "logits": "logits",
                    "present_key_names": "present.%d.key",
                    "present_value_names": "present.%d.value",
                },
            },
        },
        "search": {
            "do_sample": False,
            "num_beams": 1,
            "max_length": sizes.context,
            "min_length": 0,
            "num_return_sequences": 1,
            "past_present_share_buffer": False,
            "temperature": 1.0,
            "top_k": 1,
            "top_p": 1.0,
            "repetition_penalty": 1.0,
        },
    }


def prompt(sizes: Sizes) -> list[int]:
    rng = np.random.default_rng(SEED + 1)
    return [int(token) for token in rng.integers(1, sizes.eos, PROMPT_TOKENS)]


def greedy_tokens(sizes: Sizes, prompt_ids: list[int], count: int) -> list[int]:
    """The tokens greedy decoding picks, computed with numpy alone from the same weights (the
    whole sequence each step: no cache, so it checks the graph's cache too)."""
    found = weights(sizes)
    tokens = list(prompt_ids)
    for _ in range(count):
        state = found["embed"][tokens]
        for layer in range(sizes.layers):
            state = state + _numpy_attention(found, sizes, layer, state)
            up = np.maximum(state @ found[f"l{layer}.up"], 0)
            state = state + up @ found[f"l{layer}.down"]
        tokens.append(int(np.argmax(state[-1] @ found["head"] + found["head_bias"])))
    return tokens[len(prompt_ids) :]


def _numpy_attention(
    found: dict[str, np.ndarray], sizes: Sizes, layer: int, state: np.ndarray
) -> np.ndarray:
    length = len(state)

    def heads_of(part: str) -> np.ndarray:
        projected = np.asarray(state @ found[f"l{layer}.{part}"])
        return np.transpose(projected.reshape(length, sizes.heads, sizes.head_size), (1, 0, 2))

    query, key, value = heads_of("q"), heads_of("k"), heads_of("v")
    scores = query @ key.transpose(0, 2, 1) / np.sqrt(sizes.head_size)
    scores = np.where(np.tril(np.ones((length, length), dtype=bool)), scores, -1e9)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    attended = (scores / scores.sum(axis=-1, keepdims=True)) @ value
    joined = np.asarray(attended).transpose(1, 0, 2).reshape(length, sizes.hidden)
    return np.asarray(joined @ found[f"l{layer}.o"])


def outputs(sizes: Sizes) -> dict[str, bytes]:
    model = {"model.onnx": model_bytes(sizes), "genai_config.json": _json(genai_config(sizes))}
    return model | golden_outputs(sizes)


def golden_outputs(sizes: Sizes) -> dict[str, bytes]:
    """The prompt and the tokens greedy decoding generates after it, for either form."""
    prompt_ids = prompt(sizes)
    tokens = greedy_tokens(sizes, prompt_ids, NEW_TOKENS)
    return {"prompt.json": _json(prompt_ids), "tokens.json": _json(tokens)}


MAX_SEQUENCE = 128  # the ExecuTorch program's longest sequence
FIRST_PIECE = 0x4E00  # token id i is the character FIRST_PIECE + i in the tokenizer


def executorch_outputs(sizes: Sizes) -> dict[str, bytes]:
    model = {"decoder.pte": executorch_bytes(sizes), "tokenizer.json": _json(tokenizer(sizes))}
    return model | golden_outputs(sizes)


def executorch_bytes(sizes: Sizes) -> bytes:
    """The decoder as an ExecuTorch program for its LLM runner: ``forward(tokens [1, S])`` ->
    logits [1, S, vocab], S dynamic up to MAX_SEQUENCE, no cache (``use_kv_cache`` false)."""
    import torch
    from executorch.exir import to_edge_transform_and_lower

    network = _TorchDecoder(sizes).eval()
    sequence = torch.export.Dim("sequence", min=1, max=MAX_SEQUENCE)
    example = torch.tensor([prompt(sizes)])
    exported = torch.export.export(network, (example,), dynamic_shapes=({1: sequence},))
    metadata = {
        "get_max_seq_len": MAX_SEQUENCE,
        "get_max_context_len": MAX_SEQUENCE,
        "get_vocab_size": sizes.vocab,
        "get_bos_id": 0,
        "get_eos_ids": [sizes.eos],
        "use_kv_cache": False,
        "enable_dynamic_shape": True,
    }
    program = to_edge_transform_and_lower(exported, constant_methods=metadata).to_executorch()
    return bytes(program.buffer)


def _TorchDecoder(sizes: Sizes) -> Any:
    """make_decoder's network in torch, from the same weights, without a cache."""
    import torch

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, array in weights(sizes).items():
                self.register_buffer(name.replace(".", "_"), torch.from_numpy(array))

        def forward(self, tokens: Any) -> Any:
            state = self._buffer("embed")[tokens[0]]
            length = state.shape[0]
            causal = torch.tril(torch.ones(length, length, dtype=torch.bool))
            for layer in range(sizes.layers):
                state = state + self._attention(layer, state, length, causal)
                up = torch.relu(state @ self._weight(layer, "up"))
                state = state + up @ self._weight(layer, "down")
            return (state @ self._buffer("head") + self._buffer("head_bias"))[None]

        def _buffer(self, name: str) -> Any:
            return getattr(self, name)

        def _weight(self, layer: int, part: str) -> Any:
            return self._buffer(f"l{layer}_{part}")

        def _attention(self, layer: int, state: Any, length: Any, causal: Any) -> Any:
            def heads_of(part: str) -> Any:
                projected = state @ self._weight(layer, part)
                return projected.reshape(length, sizes.heads, sizes.head_size).transpose(0, 1)

            query, key, value = heads_of("q"), heads_of("k"), heads_of("v")
            scores = query @ key.transpose(1, 2) / sizes.head_size**0.5
            scores = torch.where(causal, scores, torch.tensor(-1e9))
            attended = torch.softmax(scores, dim=-1) @ value
            joined = attended.transpose(0, 1).reshape(length, sizes.hidden)
            return joined @ self._weight(layer, "o")

    return Decoder()


def tokenizer(sizes: Sizes) -> dict[str, Any]:
    """A Hugging Face tokenizer.json whose pieces are one character per token id (no merges),
    the first token the start and the last the end of sequence."""
    pieces = [chr(FIRST_PIECE + index) for index in range(sizes.vocab)]

    def special(index: int) -> dict[str, Any]:
        return {
            "id": index,
            "content": pieces[index],
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }

    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(0), special(sizes.eos)],
        "normalizer": None,
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": None,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": {piece: index for index, piece in enumerate(pieces)},
            "merges": [],
        },
    }


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Sizes()
    for size in ("layers", "hidden", "heads", "vocab"):
        parser.add_argument(f"--{size}", type=int, default=getattr(defaults, size))
    parser.add_argument("--executorch", action="store_true", help="for ExecuTorch's LLM runner")
    parser.add_argument("--out", type=Path, help="the folder (genai/decoder, executorch/decoder)")
    options = parser.parse_args()
    sizes = Sizes(options.layers, options.hidden, options.heads, options.vocab)
    form = "executorch" if options.executorch else "genai"
    out = options.out or HERE / form / "decoder"
    out.mkdir(parents=True, exist_ok=True)
    made = executorch_outputs(sizes) if options.executorch else outputs(sizes)
    for name, data in made.items():
        (out / name).write_bytes(data)
        print(f"wrote {out / name} ({len(data):,} bytes)")


if __name__ == "__main__":
    main()
