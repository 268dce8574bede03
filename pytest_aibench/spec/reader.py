"""Read a spec file (JSON or YAML) into plain Python data, refusing duplicate keys.

JSON and YAML loaders keep the last of two equal keys and drop the first without a word; one of
FAI-PEP's own specs loses its command template that way. Here a duplicate key is a spec error that
names the key and its JSON path.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from .paths import JsonPath, format_path

if TYPE_CHECKING:
    import yaml

YAML_SUFFIXES = (".yaml", ".yml")
SPEC_SUFFIXES = (".json", *YAML_SUFFIXES)


class _KeyedObject(dict[str, Any]):
    """A JSON object that remembers which of its keys appeared more than once."""

    duplicates: list[str]


def _json_object(pairs: list[tuple[str, Any]]) -> _KeyedObject:
    obj = _KeyedObject()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj and key not in obj.duplicates:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _first_duplicate(data: Any, path: JsonPath = ()) -> tuple[JsonPath, str] | None:
    if isinstance(data, _KeyedObject) and data.duplicates:
        return path, data.duplicates[0]
    children: Any = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else ()
    )
    for key, value in children:
        found = _first_duplicate(value, (*path, key))
        if found:
            return found
    return None


# Bounds on what one spec may expand to: deeper nesting than any spec needs would overflow the
# recursive steps after reading; more values than this are a YAML alias bomb, not a spec (FAI-PEP's
# largest spec has a few hundred; 50,000 input shapes of rank 4 are 250,000).
MAX_DEPTH = 64
MAX_VALUES = 2_000_000


def _too_deep(path: Path) -> SpecError:
    return SpecError(
        str(path), "", f"nested more than {MAX_DEPTH} levels deep; a spec needs a few. Flatten it"
    )


def _check_bounds(path: Path, data: Any) -> None:
    """Walk the data without recursion, counting every value as often as it is reached (a YAML
    alias is reached once per use, as every later step would reach it). A NaN or infinite
    number is refused here, where it enters: every range check after reading would let it
    through (NaN compares false with any bound)."""
    stack: list[tuple[Any, JsonPath]] = [(data, ())]
    seen = 0
    while stack:
        value, where = stack.pop()
        seen += 1
        if len(where) > MAX_DEPTH:
            raise _too_deep(path)
        if seen > MAX_VALUES:
            raise SpecError(
                str(path),
                "",
                f"expands to more than {MAX_VALUES:,} values (YAML "
                "aliases used many times over?); a spec needs far fewer",
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(
                str(path),
                format_path(where),
                f"{value!r} is not a number a spec can use: write a finite number",
            )
        children: Any = (
            value.items()
            if isinstance(value, dict)
            else enumerate(value)
            if isinstance(value, list)
            else ()
        )
        stack.extend((child, (*where, key)) for key, child in children)


def _read_json(path: Path, text: str) -> Any:
    try:
        data = json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        raise SpecError(
            str(path), f"line {exc.lineno} column {exc.colno}", f"not valid JSON: {exc.msg}"
        ) from None
    except RecursionError:
        raise _too_deep(path) from None
    _check_bounds(path, data)
    duplicate = _first_duplicate(data)
    if duplicate:
        where, key = duplicate
        raise SpecError(
            str(path),
            format_path(where),
            f"key {key!r} appears more than once in this object; a JSON reader keeps only the "
            "last one and silently drops the others. Keep one, or merge them.",
        )
    return data


def _unique_key_loader() -> type[yaml.SafeLoader]:
    """A SafeLoader that refuses a mapping with the same key twice (built when a YAML spec is
    read, so that PyYAML is imported only then)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"key {key!r} appears more than once in this mapping",
                        key_node.start_mark,
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def _read_yaml(path: Path, text: str) -> Any:
    import yaml

    try:
        data = yaml.load(text, Loader=_unique_key_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise SpecError(str(path), where, f"not valid YAML: {exc.problem}") from None
    except RecursionError:
        raise _too_deep(path) from None
    _check_bounds(path, data)
    return data


def read_spec_data(path: Path) -> Any:
    """Parse ``path`` as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(path), "", f"cannot read the file: {exc}") from None
    if path.suffix.lower() in YAML_SUFFIXES:
        return _read_yaml(path, text)
    return _read_json(path, text)
