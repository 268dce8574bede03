"""What a spec becomes once loaded: file references and cases (one per pytest item and device)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A spec's format names the file format; the runner that reads it is chosen from it unless the
# model or test names a framework of its own.
FORMAT_FRAMEWORKS: Mapping[str, str] = {
    "onnx": "onnxruntime",
    "tflite": "tflite",
    "caffe2": "caffe2",
    "pytorch": "pytorch",
    "executorch": "executorch",
    "genai": "genai",  # an onnxruntime-genai model folder
    "torchscript": "pytorch",
    "generic": "generic",
}


@dataclass(frozen=True)
class FileRef:
    """One entry of a ``files``/``input_files``/``output_files`` map.

    ``where`` is its JSON path in the spec, so that a download or MD5 error can point at the entry
    that caused it.
    """

    name: str
    filename: str
    location: str
    md5: str | None
    where: str

    @property
    def is_generated(self) -> bool:
        """Its location is only known at run time (``{HOSTDIR}/x``): nothing to fetch."""
        return "{" in self.location

    @property
    def is_remote(self) -> bool:
        return self.location.startswith(("http://", "https://"))


@dataclass(frozen=True)
class Case:
    """One test of a spec after expansion (one input shape): the data behind a pytest item.

    ``model`` and ``test`` are the spec's dicts after meta merge, legacy rewriting and expansion;
    they are never mutated, and every placeholder lookup reads them.
    """

    source: Path
    spec_path: Path
    index: int
    test_index: int
    identifier: str
    model: Mapping[str, Any]
    test: Mapping[str, Any]
    model_files: tuple[FileRef, ...]
    input_files: tuple[FileRef, ...]
    output_files: tuple[FileRef, ...]
    golden_files: tuple[FileRef, ...] = ()

    @property
    def name(self) -> str:
        return str(self.model["name"])

    @property
    def format(self) -> str:
        return str(self.model["format"])

    @property
    def metric(self) -> str:
        return str(self.test["metric"])

    @property
    def framework(self) -> str:
        explicit = self.test.get("framework") or self.model.get("framework")
        return str(explicit or FORMAT_FRAMEWORKS.get(self.format, self.format))

    @property
    def reference(self) -> str | None:
        """The framework whose outputs are this network's golden (the spec's ``reference``,
        the test's or the model's), as ``--aibench-reference`` makes one for every network."""
        value = self.test.get("reference") or self.model.get("reference")
        return str(value) if value else None

    @property
    def layout(self) -> str | None:
        """``"NHWC"`` where the spec says the model's 4-D tensors are channels-last (a converted
        LiteRT model of an NCHW network), ``"NCHW"``; ``None`` where it says nothing, which the
        agreement across frameworks takes as NCHW."""
        value = self.test.get("layout") or self.model.get("layout")
        return str(value) if value else None

    @property
    def match(self) -> dict[str, list[str]]:
        """The spec's ``match``: this model's input and output names in the order of the
        reference framework's (a converter that reordered them too); empty where it says
        nothing, and tensors pair by position."""
        value = self.test.get("match") or self.model.get("match") or {}
        return {part: list(value[part]) for part in ("inputs", "outputs") if part in value}

    @property
    def stateful(self) -> bool:
        """The spec's ``stateful``: the model keeps state between calls (a recurrent or
        streaming model, a decoder with a cache), so only the first call after loading, on
        fresh state, computes what golden files and other frameworks hold."""
        value = self.test.get("stateful")
        return bool(self.model.get("stateful") if value is None else value)

    @property
    def warmup(self) -> int:
        return int(self.test.get("warmup", 0))

    @property
    def iterations(self) -> int | None:
        value = self.test.get("iter")
        return None if value is None else int(value)

    @property
    def platform_args(self) -> dict[str, Any]:
        """The test's ``platform_args``, or the model's when the test has none (as FAI-PEP)."""
        return dict(self.test.get("platform_args") or self.model.get("platform_args") or {})

    def timeout(self, default: float) -> float:
        """Seconds the whole case may take: the spec's timeout (test, platform_args, model),
        else ``default`` (--aibench-timeout)."""
        for value in (
            self.test.get("timeout"),
            self.platform_args.get("timeout"),
            self.model.get("timeout"),
        ):
            if value:
                return float(value)
        return default

    @property
    def commands(self) -> list[str]:
        return list(self.test.get("commands", []))

    @property
    def where(self) -> str:
        """Where the case comes from, for messages: ``spec.json tests[1]``."""
        return f"{self.spec_path} tests[{self.test_index}]"
