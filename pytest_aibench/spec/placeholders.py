"""Placeholders in spec strings: ``{TGTDIR}``, ``{files.init}``, ``{warmup}``, any field.

A token is ``{name}`` or ``{dotted.name}`` with word characters only, so text such as awk's
``{print $1}`` is never a token. Unknown tokens stay as they are. Resolution repeats until the text
stops changing, because values may hold placeholders themselves (``"{total_images}/{repeat}"``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

TOKEN = re.compile(r"\{([\w.]+)\}")
MAX_PASSES = 16

Lookup = Callable[[str], "str | None"]


def fill(text: str, lookup: Lookup) -> str:
    """Replace every known token in ``text`` until nothing changes (or a cycle is cut short)."""

    def replace(match: re.Match[str]) -> str:
        value = lookup(match.group(1))
        return match.group(0) if value is None else value

    for _ in range(MAX_PASSES):
        filled = TOKEN.sub(replace, text)
        if filled == text:
            break
        text = filled
    return text


def dotted(data: Mapping[str, Any], name: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; ``None`` where the path does not exist."""
    value: Any = data
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def as_text(value: Any) -> str | None:
    """A field's text as a command sees it; containers and missing values are not substituted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def chained(*sources: Mapping[str, Any]) -> Lookup:
    """Look a token up in each source in turn (dotted paths allowed); first scalar wins."""

    def lookup(name: str) -> str | None:
        for source in sources:
            text = as_text(dotted(source, name))
            if text is not None:
                return text
        return None

    return lookup


def chained_lookup(first: Mapping[str, Any], then: Lookup) -> Lookup:
    """``first`` (dotted names allowed), falling back to another lookup."""
    own = chained(first)
    return lambda name: own(name) or then(name)


def map_strings(data: Any, change: Callable[[str], str]) -> Any:
    """A copy of JSON-like ``data`` with ``change`` applied to every string value."""
    if isinstance(data, str):
        return change(data)
    if isinstance(data, Mapping):
        return {key: map_strings(value, change) for key, value in data.items()}
    if isinstance(data, list):
        return [map_strings(item, change) for item in data]
    return data


def parse_string_map(text: str | None) -> dict[str, str]:
    """``--aibench-string-map '{"MODEL_DIR": "/models"}'`` as a dict; raises ValueError."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object of strings, found {type(data).__name__}")
    return {str(key): str(value) for key, value in data.items()}


def apply_string_map(data: Any, string_map: Mapping[str, str]) -> Any:
    """Replace ``{KEY}`` by the string map's value in every string of ``data``, once."""
    if not string_map:
        return data
    return map_strings(data, lambda text: fill(text, string_map.get))
