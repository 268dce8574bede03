"""The plugin's options in pytest: the table (options.py) added to pytest's parser, and the
frozen Settings resolved from pytest's config.

Precedence: command line > environment (``AIBENCH_<NAME>``) > ini (``aibench_<name>``) > default.
A bad value is a ``pytest.UsageError`` that names the option, so pytest exits with code 4 before
anything runs.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .energy.sources import SOURCES as POWER_SOURCES
from .names import path_component
from .options import OPTIONS, Option, Settings, default_model_cache
from .spec import parse_string_map
from .verdicts import Rule
from .verdicts.golden import Tolerance


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("aibench", "ML model benchmarks (pytest-aibench)")
    for option in OPTIONS:
        where = f" [env {option.env}" + (f", ini {option.ini_key}]" if option.ini else "]")
        group.addoption(
            option.flag,
            dest=option.dest,
            help=option.help + where,
            default=None,
            **_argparse(option),
        )
        if option.ini:
            if option.kind == "paths":
                parser.addini(option.ini_key, option.help, type="paths", default=[])
            elif option.repeat:
                parser.addini(option.ini_key, option.help, type="linelist", default=[])
            else:
                parser.addini(option.ini_key, option.help, type="string", default=None)


def _argparse(option: Option) -> dict[str, Any]:
    if option.kind == "flag":
        return {"action": "store_const", "const": True}
    if option.kind == "optional":
        return {"nargs": "?", "const": "latest", "metavar": option.metavar}
    return {"action": "append" if option.repeat else "store", "metavar": option.metavar}


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _flag(text: str) -> bool:
    word = text.strip().lower()
    if word not in _TRUE + _FALSE:
        raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE[:-1])}")
    return word in _TRUE


_CONVERT: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "path": lambda text: Path(text).expanduser(),
    "optional": str,
    "flag": _flag,
}


def _raw(config: pytest.Config, option: Option) -> tuple[Any, str]:
    value = config.getoption(option.dest)
    if value is not None:
        return value, option.flag
    if os.environ.get(option.env):
        text = os.environ[option.env]
        if option.repeat:  # several values: PATH-style for paths, ';' between rules
            return text.split(os.pathsep if option.kind == "paths" else ";"), option.env
        return text, option.env
    if option.ini:
        ini_value = config.getini(option.ini_key)
        if ini_value:
            return ini_value, option.ini_key
    return option.default, ""


def _value(config: pytest.Config, option: Option) -> Any:
    raw, source = _raw(config, option)
    if raw is None or (option.repeat and not raw):
        return () if option.repeat else (False if option.kind == "flag" else None)
    if option.kind == "paths":
        return tuple(Path(str(item)).expanduser() for item in raw)
    if option.kind == "rules":
        try:
            return tuple(Rule.parse(str(item)) for item in raw if str(item).strip())
        except ValueError as exc:
            raise pytest.UsageError(f"{source}: {exc}") from None
    try:
        value = raw if not isinstance(raw, str) else _CONVERT[option.kind](raw)
    except ValueError:
        expected = {"int": "an integer", "float": "a number"}.get(
            option.kind, "true or false (1, yes, on / 0, no, off)"
        )
        raise pytest.UsageError(f"{source}: expected {expected}, found {raw!r}") from None
    if option.kind in ("int", "float") and value < 0:
        raise pytest.UsageError(f"{source}: expected a value >= 0, found {raw!r}")
    return value


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise pytest.UsageError(
            f"--aibench-min-effect: expected a percentage such as 5%, found {text!r}"
        ) from None
    return value


def _check_ranges(values: dict[str, Any]) -> None:
    """Values a number type admits but that make no sense, refused before anything runs."""
    if not 0 < values["alpha"] < 1:
        raise pytest.UsageError(
            f"--aibench-alpha: expected a probability between 0 and 1 "
            f"(such as 0.01), found {values['alpha']!r}"
        )
    for name in ("timeout", "download_timeout", "remote_timeout"):
        if values[name] is not None and values[name] <= 0:
            flag = "--aibench-" + name.replace("_", "-")
            raise pytest.UsageError(
                f"{flag}: expected a number of seconds > 0, found {values[name]!r}"
            )
    if values["save"]:
        try:
            path_component(values["save"], "save name")
        except ValueError as exc:
            raise pytest.UsageError(f"--aibench-save: {exc}") from None


def from_config(config: pytest.Config) -> Settings:
    values = {option.dest.removeprefix("aibench_"): _value(config, option) for option in OPTIONS}
    try:
        values["string_map"] = parse_string_map(values["string_map"])
    except ValueError as exc:
        raise pytest.UsageError(f"--aibench-string-map: {exc}") from None
    try:
        values["error_tolerance"] = Tolerance.parse(values["error_tolerance"] or "")
    except ValueError as exc:
        raise pytest.UsageError(f"--aibench-error-tolerance: {exc}") from None
    if values["backend"] not in ("cpu", "cuda"):
        raise pytest.UsageError(
            f"--aibench-backend: expected cpu or cuda, found {values['backend']!r}"
        )
    values["min_effect"] = _percent(values["min_effect"])
    _check_ranges(values)
    if values["ab_control"] and not values["program"]:
        raise pytest.UsageError("--aibench-ab-control needs --aibench-program (the treatment)")
    if values["fleet"] not in ("each", "pool"):
        raise pytest.UsageError(
            f"--aibench-fleet: expected each or pool, found {values['fleet']!r}"
        )
    if values["power"] and values["power"] not in POWER_SOURCES:
        raise pytest.UsageError(
            f"--aibench-power: expected one of {', '.join(POWER_SOURCES)}, "
            f"found {values['power']!r}"
        )
    if values["ab_blocks"] < 1:
        raise pytest.UsageError("--aibench-ab-blocks: expected at least 1, found 0")
    if values["iterations"] is not None and values["iterations"] < 1:
        raise pytest.UsageError("--aibench-iterations: expected at least 1, found 0")
    if values["remote_reporter"]:
        try:
            from .reporting.remote import Endpoint  # urllib and ssl only when a run will be posted

            Endpoint.parse(values["remote_reporter"])
        except ValueError as exc:
            raise pytest.UsageError(f"--aibench-remote-reporter: {exc}") from None
    if values["html"] and importlib.util.find_spec("matplotlib") is None:
        raise pytest.UsageError(
            "--aibench-html needs matplotlib: pip install 'pytest-aibench[html]'"
        )
    values["model_cache"] = values["model_cache"] or default_model_cache()
    spec_source = _raw(config, OPTIONS[0])[1]
    return Settings(**values, specs_from_command_line=spec_source.startswith(("--", "AIBENCH")))
