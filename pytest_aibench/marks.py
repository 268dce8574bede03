"""The marks spec items carry (``-m onnx``, ``-m android``, ``-m delay``): their names, made
from spec text, and their declaration, so that ``--strict-markers`` runs accept them and
``pytest --markers`` lists them."""

from __future__ import annotations

import re

import pytest

from .spec.model import FORMAT_FRAMEWORKS

# pytest's own marks change how an item runs: a spec whose metric is "skip" must not skip.
_PYTEST_MARKS = frozenset(
    {
        "skip",
        "skipif",
        "xfail",
        "parametrize",
        "usefixtures",
        "filterwarnings",
        "tryfirst",
        "trylast",
    }
)


def mark_name(text: str) -> str | None:
    """A usable ``-m`` name for a framework, format, metric or platform, or ``None`` where the
    text keeps no letter or digit. The spec keeps its name; only the mark is cleaned: pytest
    refuses marks that start with ``_``, and a name of one of pytest's own marks is prefixed."""
    name = re.sub(r"\W+", "_", text.lower()).strip("_")
    if not name:
        return None
    return f"aibench_{name}" if name in _PYTEST_MARKS else name


_MARK_HELP = {
    "aibench": "every item made from a pytest-aibench spec",
}


_REGISTERED = pytest.StashKey[set[str]]()

# The marks of every built-in format, framework, metric and device kind, declared at start-up so
# that ``pytest --markers`` lists them; others (a plugin's framework) are declared at collection.
KNOWN_MARKS = (
    *sorted({*FORMAT_FRAMEWORKS, *FORMAT_FRAMEWORKS.values()}),
    "delay",
    "error",
    "power",
    "generation",
    "host",
    "android",
    "ios",
    "ssh",
)


def register_known_marks(config: pytest.Config) -> None:
    for name in KNOWN_MARKS:
        register_mark(config, name)


def register_mark(config: pytest.Config, name: str) -> None:
    """Declare a mark before adding it, so ``--strict-markers`` runs accept spec items."""
    registered = config.stash.setdefault(_REGISTERED, set())
    if name in registered:
        return
    registered.add(name)
    known = {line.split(":", 1)[0].split("(")[0].strip() for line in config.getini("markers")}
    if name not in known:
        text = _MARK_HELP.get(
            name, "pytest-aibench spec items of this framework, format, metric or platform"
        )
        config.addinivalue_line("markers", f"{name}: {text}")
