"""Spec file → validated, expanded cases.

A file is either a model spec ``{"model": ..., "tests": [...]}`` or a benchmark list
``{"meta": ..., "benchmarks": ["relative/model.json", ...]}`` whose ``meta`` is merged into every
listed model without overwriting what the model says.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..generation import split_generation
from ..names import UnsafeName, path_component
from .legacy import normalise_commands, split_shapes
from .model import Case, FileRef
from .placeholders import apply_string_map, chained, fill
from .reader import read_spec_data
from .validate import BENCHMARK_LIST, MODEL_SPEC, validate


def spec_kind(data: Any) -> str | None:
    """``MODEL_SPEC`` or ``BENCHMARK_LIST`` for data shaped like a spec, else ``None``."""
    if not isinstance(data, dict):
        return None
    if "benchmarks" in data:
        return BENCHMARK_LIST
    if "model" in data or "tests" in data:
        return MODEL_SPEC
    return None


def load_cases(path: Path, string_map: Mapping[str, str] | None = None) -> list[Case]:
    """Every case of the spec file at ``path``; raises :class:`SpecError` for any problem."""
    return load_cases_from(path, read_spec_data(path), string_map)


def load_cases_from(
    path: Path, data: Any, string_map: Mapping[str, str] | None = None
) -> list[Case]:
    """Every case of spec ``data`` already read from ``path``."""
    kind = spec_kind(data)
    if kind is None:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise SpecError(
            str(path),
            "(top level)",
            "expected a model spec (fields 'model' and 'tests') or a benchmark list (fields "
            f"'meta' and 'benchmarks'), found {found}",
        )
    string_map = string_map or {}
    if kind == BENCHMARK_LIST:
        return _load_list(path, data, string_map)
    return _load_model_spec(path, path, data, string_map, {})


def _load_list(path: Path, data: Any, string_map: Mapping[str, str]) -> list[Case]:
    data = apply_string_map(data, string_map)
    validate(data, BENCHMARK_LIST, str(path))
    cases: list[Case] = []
    for position, relative in enumerate(data["benchmarks"]):
        target = path.parent / relative
        if not target.is_file():
            raise SpecError(
                str(path),
                f"benchmarks[{position}]",
                f"expected a model spec file at {target}, found nothing there "
                "(paths are relative to the list file's folder)",
            )
        listed = read_spec_data(target)
        if spec_kind(listed) != MODEL_SPEC:
            raise SpecError(
                str(path),
                f"benchmarks[{position}]",
                f"expected {target} to be a model spec with 'model' and 'tests', "
                "found another kind of file",
            )
        cases += _load_model_spec(path, target, listed, string_map, data["meta"])
    return cases


def merge_meta(model: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """``meta`` merged into ``model``: new keys added, dicts merged, lists concatenated."""
    merged = dict(model)
    for key, value in meta.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(merged[key], Mapping) and isinstance(value, Mapping):
            merged[key] = merge_meta(merged[key], value)
        elif isinstance(merged[key], list) and isinstance(value, list):
            merged[key] = merged[key] + value
    return merged


def _load_model_spec(
    source: Path,
    spec_path: Path,
    data: Any,
    string_map: Mapping[str, str],
    meta: Mapping[str, Any],
) -> list[Case]:
    data = apply_string_map(data, string_map)
    validate(data, MODEL_SPEC, str(spec_path))
    model = merge_meta(data["model"], meta)
    for key in ("name", "format"):  # they name the model's folder in the cache
        _component(model[key], f"model.{key}", spec_path)
    model_files = _file_refs(model.get("files", {}), "model.files", spec_path)
    cases: list[Case] = []
    for test_index, raw_test in enumerate(data["tests"]):
        where = f"tests[{test_index}]"
        test = _with_command_args(normalise_commands(raw_test, str(spec_path), where), model)
        variants = split_shapes(test, str(spec_path), where)
        for variant in (split for shaped in variants for split in split_generation(shaped)):
            index = len(cases)
            identifier = str(variant.get("identifier", "{ID}")).replace("{ID}", str(index))
            variant["identifier"] = fill(identifier, chained(variant, model))
            _component(variant["identifier"], f"{where}.identifier", spec_path)
            cases.append(
                Case(
                    source=source,
                    spec_path=spec_path,
                    index=index,
                    test_index=test_index,
                    identifier=variant["identifier"],
                    model=model,
                    test=variant,
                    model_files=model_files,
                    input_files=_file_refs(
                        variant.get("input_files", {}), f"{where}.input_files", spec_path
                    ),
                    output_files=_file_refs(
                        variant.get("output_files", {}), f"{where}.output_files", spec_path
                    ),
                    golden_files=_file_refs(
                        variant.get("golden_files", {}), f"{where}.golden_files", spec_path
                    ),
                )
            )
    return cases


def _with_command_args(test: dict[str, Any], model: Mapping[str, Any]) -> dict[str, Any]:
    """FAI-PEP appends ``model.command_args`` to every command that runs ``{program}``."""
    extra = model.get("command_args")
    if extra:
        test["commands"] = [
            f"{command} {extra}" if "{program}" in command else command
            for command in test["commands"]
        ]
    return test


def _file_refs(entries: Mapping[str, Any], where: str, spec_path: Path) -> tuple[FileRef, ...]:
    refs = []
    for name, entry in entries.items():
        items = entry if isinstance(entry, list) else [entry]
        for position, item in enumerate(items):
            at = f"{where}.{name}" + (f"[{position}]" if isinstance(entry, list) else "")
            refs.append(_file_ref(name, item, at, spec_path))
    return tuple(refs)


def _file_ref(name: str, item: Any, where: str, spec_path: Path) -> FileRef:
    if isinstance(item, str):  # FAI-PEP 2018: "input_files": {"data": "tests/data.txt"}
        item = {"filename": posixpath.basename(item), "location": item}
    return FileRef(
        name=name,
        filename=_file_name(item["filename"], f"{where}.filename", spec_path),
        location=item["location"],
        md5=item.get("md5") or None,  # FAI-PEP's own specs use "" for "no md5"
        where=where,
    )


def _file_name(text: str, where: str, spec_path: Path) -> str:
    """A ``filename`` is one name: path parts are refused (the folder goes in ``location``);
    other characters a file name cannot hold are dropped, as for any spec text."""
    if text in (".", "..") or "/" in text or "\\" in text:
        raise SpecError(
            str(spec_path),
            where,
            f"{text!r} has path parts, and a filename is one name (the file is stored under it "
            "in the cache): write only the name and put the folder in 'location'",
        )
    return _component(text, where, spec_path)


def _component(text: str, where: str, spec_path: Path) -> str:
    """Spec text that will name a file or folder, as one safe path component."""
    try:
        return path_component(text, where.rsplit(".", 1)[-1])
    except UnsafeName as exc:
        raise SpecError(str(spec_path), where, str(exc)) from None
