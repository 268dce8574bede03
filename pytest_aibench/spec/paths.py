"""JSON paths as error messages show them: ``tests[2].inputs.data.shapes``."""

from __future__ import annotations

import re
from collections.abc import Iterable

JsonPath = tuple["str | int", ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text
