"""The plugin's options in pytest: the table (options.py) added to pytest's parser, and the
frozen Settings resolved from pytest's config.

Precedence: command line > environment (``AIBENCH_<NAME>``) > ini (``aibench_<name>``) > default.
A bad value is a ``pytest.UsageError`` that names the option, so pytest exits with code 4 before
anything runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from .options import OPTIONS, SPEC_OPTIONS, Option, Settings

GROUP_TITLE = (
    "pytest-aibench (the main options; all {count}, each also read from $AIBENCH_<NAME> and "
    "the ini key aibench_<name>: 'aibench options' or docs/options.md)"
)


def add_options(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Every option on the command line, but only those with a ``brief`` in ``pytest --help``
    (a good neighbour's help page), and the ini keys of those plus the ones the ini file or
    ``-o`` names: pytest lists every ini key it knows in ``--help``."""
    group = parser.getgroup("aibench", GROUP_TITLE.format(count=len(OPTIONS)))
    named = _ini_keys_given(pluginmanager)
    for option in OPTIONS:
        group.addoption(
            option.flag,
            dest=option.dest,
            help=option.brief or argparse.SUPPRESS,
            default=None,
            **_argparse(option),
        )
        if option.ini and (option.brief or named is None or option.ini_key in named):
            _add_ini(parser, option)
            _registered_ini(pluginmanager).add(option.ini_key)


def _add_ini(parser: pytest.Parser, option: Option) -> None:
    text = (option.brief or option.help).replace("%%", "%")  # argparse's escape, not ini's
    if option.kind == "paths":
        parser.addini(option.ini_key, text, type="paths", default=[])
    elif option.repeat:
        parser.addini(option.ini_key, text, type="linelist", default=[])
    else:
        parser.addini(option.ini_key, text, type="string", default=None)


_INI_REGISTERED = pytest.StashKey[set[str]]()


def _registered_ini(pluginmanager: pytest.PytestPluginManager) -> set[str]:
    config = pluginmanager.get_plugin("pytestconfig")
    if config is None:
        return set()
    return cast("set[str]", config.stash.setdefault(_INI_REGISTERED, set()))


def _ini_keys_given(pluginmanager: pytest.PytestPluginManager) -> set[str] | None:
    """The ini keys the run's ini file and ``-o`` options name, read when the plugin loads
    (after pytest has read them); ``None`` where this pytest keeps them elsewhere: then every
    key is registered, which costs only help lines."""
    config = pluginmanager.get_plugin("pytestconfig")
    given = getattr(config, "_inicfg", None)  # pytest 9; pytest 8 calls it inicfg
    if given is None:
        given = getattr(config, "__dict__", {}).get("inicfg")
    return None if given is None else {str(key) for key in given}


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
    if option.ini and option.ini_key in config.stash.get(_INI_REGISTERED, set()):
        ini_value = config.getini(option.ini_key)
        if ini_value:
            return ini_value, option.ini_key
    return option.default, ""


def _typed(option: Option, raw: Any, source: str) -> Any:
    """The raw value as the option's kind has it (a tuple for repeatable options)."""
    if raw is None or (option.repeat and not raw):
        return () if option.repeat else (False if option.kind == "flag" else None)
    if option.kind == "paths":
        return tuple(Path(str(item)).expanduser() for item in raw)
    if option.repeat:
        return tuple(str(item) for item in raw)
    try:
        value = raw if not isinstance(raw, str) else _CONVERT[option.kind](raw)
    except ValueError:
        expected = {"int": "an integer", "float": "a number"}.get(
            option.kind, "true or false (1, yes, on / 0, no, off)"
        )
        raise pytest.UsageError(f"{source}: expected {expected}, found {raw!r}") from None
    if option.kind == "float" and not math.isfinite(value):  # nan or inf: no bound holds
        raise pytest.UsageError(f"{source}: expected a finite number, found {raw!r}")
    if option.kind in ("int", "float") and value < 0:
        raise pytest.UsageError(f"{source}: expected a value >= 0, found {raw!r}")
    return value


def _value(config: pytest.Config, option: Option) -> Any:
    raw, source = _raw(config, option)
    value = _typed(option, raw, source)
    if option.check is None:
        return value
    try:
        return option.check(value)
    except ValueError as exc:
        raise pytest.UsageError(f"{source or option.flag}: {exc}") from None


def from_config(config: pytest.Config) -> Settings:
    """Every option's value, checked by the option's own rule (options.py)."""
    values = {option.dest.removeprefix("aibench_"): _value(config, option) for option in OPTIONS}
    if values["ab_control"] and not values["program"]:
        raise pytest.UsageError("--aibench-ab-control needs --aibench-program (the treatment)")
    spec_source = _raw(config, SPEC_OPTIONS[0])[1]
    return Settings(**values, specs_from_command_line=spec_source.startswith(("--", "AIBENCH")))


def keep_rootdir(config: pytest.Config, args: list[str]) -> None:
    """``--aibench-history PATH`` means what ``--aibench-history=PATH`` does.

    pytest chooses the rootdir and ini file from the command line's paths before it loads
    plugins, so the value of a plugin's option written after a space is taken for a test path:
    a path outside the project moved the rootdir there (another ini file or none, other node
    ids, ``.aibench/`` in the wrong folder). Once the options are known, the choice is made
    again from the real paths and, where it differs, put in place before conftests load, with
    the ini file's ``addopts``. Nothing is done where no option of ours is followed by a value
    after a space (the common case)."""
    flags = {option.flag for option in OPTIONS if option.kind != "flag"}
    if not any(arg in flags for arg in args[:-1]):
        return
    from _pytest.config.findpaths import determine_setup  # the one place that decides it

    known = config.known_args_namespace
    try:
        rootpath, inipath, inicfg, _ = determine_setup(
            inifile=known.inifilename,
            override_ini=known.override_ini,
            args=known.file_or_dir,
            rootdir_cmd_arg=known.rootdir or None,
            invocation_dir=config.invocation_params.dir,
        )
    except TypeError:  # pytest before 9 decides it with other arguments: left as it chose
        return
    if (rootpath, inipath) == (config.rootpath, config.inipath):
        return
    # pytest has no public way to set these; they are what its own parse set (pytest 9).
    derived_confcutdir = known.confcutdir == str(
        config.inipath.parent if config.inipath else config.rootpath
    )
    config._rootpath, config._inipath = rootpath, inipath
    config._inicfg = inicfg
    config._inicache.clear()
    config._parser.extra_info.update(rootdir=str(rootpath), inifile=str(inipath))
    if derived_confcutdir:
        known.confcutdir = str(inipath.parent if inipath else rootpath)
    args[:0] = config.getini("addopts")


_SECRET_FLAG = "--aibench-remote-access-token"
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^\s:/@]*:)[^\s@/]+@")


def mask_secrets(early_config: pytest.Config) -> None:
    """Secrets masked in the invocation arguments, which ``--debug`` writes to its log once
    parsing ends (and which nothing else of pytest's needs them in): the access token's value
    and the password of any URL (``--aibench-history postgresql://ci:PASSWORD@lab/db``)."""
    args = [_URL_PASSWORD.sub(r"\1***@", arg) for arg in early_config.invocation_params.args]
    for index, arg in enumerate(args):
        if arg.startswith(f"{_SECRET_FLAG}="):
            args[index] = f"{_SECRET_FLAG}=***"
        elif arg == _SECRET_FLAG and index + 1 < len(args):
            args[index + 1] = "***"
    if tuple(args) != tuple(early_config.invocation_params.args):
        early_config.invocation_params = dataclasses.replace(
            early_config.invocation_params, args=tuple(args)
        )
