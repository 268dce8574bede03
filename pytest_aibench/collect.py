"""Spec files → pytest items: the one module that knows pytest's collection API.

Each case on each device becomes a :class:`SpecItem`, a ``pytest.Function`` made with
``from_parent(spec_file, name=..., callobj=run_case)``, rather than a bare ``pytest.Item``
subclass: a Function built on a callable gets pytest's whole fixture machinery for free (the
fixtures named in ``run_case``'s signature, the user's autouse fixtures, plugins that wrap
fixtures) with nothing but public API, where an Item would have to re-implement fixture setup.
tests/test_collection.py shows a user's autouse fixture reaching spec items. The case and device
ride in ``item.stash``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .devices.base import DeviceInfo
from .errors import AibenchError, AibenchWarning, SpecError, Unsupported
from .marks import mark_name, register_mark
from .spec.load import load_cases_from, spec_kind
from .spec.model import Case
from .spec.reader import read_spec_data
from .stash import CANDIDATES, CASE, COLLECTION, DEVICE

try:  # pytest >= 9.2 (public API has no other way to give a node its parameter part)
    from _pytest.nodeid import NodeId
except ImportError:  # pragma: no cover - older pytest keys by the node id string
    NodeId = None  # type: ignore[assignment,misc]

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr
    from _pytest.fixtures import FuncFixtureInfo

    from .devices.base import Device
    from .recorder import Recorder
    from .runners.base import CaseFiles, Runner
    from .session import RunState


def run_case(
    aibench_runner: Runner,
    aibench_case: Case,
    aibench_device: Device,
    aibench_files: CaseFiles,
    aibench: Recorder,
    aibench_session: RunState,
) -> None:
    """The test function of every spec item: the fixtures prepare, the runner measures."""
    from .ab.sides import files_under  # the runners, devices and verdicts it reaches
    from .execution import Execution
    from .running import execute

    run = aibench_session
    control_root = run.settings.ab_control_root
    try:
        execute(
            Execution(
                aibench_case,
                aibench_runner,
                aibench_device,
                aibench_files,
                run.settings,
                run.scratch,
                run.fleet.host,
                run.traces,
                files_under(aibench_files, run.config.rootpath, control_root)
                if control_root
                else None,
                run.outputs_for(aibench_case),
            ),
            aibench,
        )
    except Unsupported as exc:
        pytest.skip(str(exc))


def targets(devices: list[DeviceInfo], fleet: str) -> dict[str, tuple[DeviceInfo, ...]]:
    """What each case runs on: every device apart (``each``), or one pool per device kind
    (``pool``), labelled as node ids show them."""
    if fleet == "each":
        return {device.id: (device,) for device in devices}
    pools: dict[str, tuple[DeviceInfo, ...]] = {}
    for device in devices:
        pools[device.kind] = (*pools.get(device.kind, ()), device)
    return pools


class SpecItem(pytest.Function):
    """One case of a spec on one device."""

    if NodeId is not None:

        @property
        def id(self) -> NodeId:
            """pytest >= 9.2 keys ``--lf``, ``--ff`` and ``--sw`` by structured node ids and
            parses the stored ``file::name[params]`` keys back into that form; a Function made
            without a callspec would keep ``[params]`` inside its name, so no stored key would
            ever match it. The parsed form of the same node id string does."""
            return NodeId.parse(self.nodeid)

    def reportinfo(self) -> tuple[Path, int, str]:
        # The spec file, not run_case's source; line 0 because a spec case has no line of code.
        return self.path, 0, self.name

    def repr_failure(  # type: ignore[override]  # pytest.Function narrows Node's signature
        self, excinfo: ExceptionInfo[BaseException]
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, (AibenchError, AibenchWarning)):  # -W error: a warning
            return str(excinfo.value)  # our messages say where and what; our stack would not
        if isinstance(excinfo.value, Exception) and self.config.option.tbstyle not in FULL_TB:
            return raised_while_running(self.stash[CASE], excinfo)
        return super().repr_failure(excinfo)


FULL_TB = ("long", "native")  # --tb styles that ask for every frame
PACKAGE = Path(__file__).resolve().parent


def raised_while_running(case: Case, excinfo: ExceptionInfo[BaseException]) -> str:
    """A framework's exception (ONNX Runtime refusing an input, torch failing a shape check) as
    one paragraph: which case, which library raised it and where, and its own message. The
    plugin's frames between the test and the framework would only hide the message."""
    frames = [entry for entry in excinfo.traceback if isinstance(entry.path, Path)]
    raiser = Path(frames[-1].path) if frames else None
    ours = raiser is not None and raiser.is_relative_to(PACKAGE)
    who = "pytest-aibench itself (a bug: please report it)" if ours else _library(raiser)
    if frames:
        who += f" line {frames[-1].lineno + 1}"
    message = excinfo.exconly().strip()
    return (
        f"{case.where} ({case.name}, {case.identifier}): raised in {who}:\n  {message}\n"
        "(--tb=long shows the whole traceback)"
    )


def _library(path: Path | None) -> str:
    """``onnxruntime (onnxruntime/capi/onnxruntime_inference_collection.py)``: the installed
    package a file belongs to, else the file."""
    if path is None:
        return "a library"
    parts = path.parts
    if "site-packages" in parts or "dist-packages" in parts:
        index = max(i for i, part in enumerate(parts) if part.endswith("-packages"))
        if index + 1 < len(parts):
            return f"{parts[index + 1]} ({Path(*parts[index + 1 :])})"
    return str(path)


def note_references(references: dict[tuple[str, str], str], cases: Iterable[Case]) -> None:
    """The spec's ``reference`` fields, by network; two specs may not name two references for
    one network."""
    for case in cases:
        if case.reference is None:
            continue
        known = references.setdefault((case.name, case.identifier), case.reference)
        if known != case.reference:
            raise SpecError(
                str(case.spec_path),
                f"tests[{case.test_index}].reference",
                f"{case.reference!r}, where another spec made {known!r} the reference of "
                f"{case.name}[{case.identifier}]: one network has one reference framework",
            )


class SpecFile(pytest.File):
    """A model spec or benchmark list given with ``--aibench-spec`` (or found in its folder)."""

    def collect(self) -> Iterable[SpecItem]:
        plugin = self.config.stash[COLLECTION]
        try:
            data = read_spec_data(self.path)
            if spec_kind(data) is None and not plugin.named_explicitly(self.path):
                return []  # some other JSON file in a spec folder (golden data, configs)
            cases = load_cases_from(self.path, data, plugin.settings.string_map)
            note_references(plugin.references, cases)
            return list(self._items(cases, targets(plugin.devices, plugin.settings.fleet)))
        except SpecError as exc:
            plugin.broken_specs.add(self.nodeid)
            shown = os.path.relpath(exc.path, self.config.invocation_params.dir)
            raise self.CollectError(
                exc.message(exc.path if shown.startswith("..") else shown)
            ) from None
        except Exception as exc:  # a spec we failed to foresee: still an error of this file only
            plugin.broken_specs.add(self.nodeid)
            raise self.CollectError(
                f"{self.path}: pytest-aibench could not load this spec "
                f"({type(exc).__name__}: {exc}); the other specs still run. Please report this "
                "with the spec file"
            ) from exc

    def _items(
        self,
        cases: list[Case],
        groups: dict[str, tuple[DeviceInfo, ...]],
    ) -> Iterator[SpecItem]:
        seen: set[str] = set()
        self._fixtures: FuncFixtureInfo | None = None  # the first item's, shared by the rest
        self._marks: dict[str, pytest.MarkDecorator] = {}
        for case in cases:
            for label, devices in groups.items():
                name = f"{case.name}[{case.identifier}-{label}]"
                if name in seen:  # two tests with one identifier: keep node ids unique
                    name = f"{case.name}[{case.identifier}-{label}-{case.index}]"
                seen.add(name)
                yield self._item(name, case, label, devices)

    def _item(self, name: str, case: Case, label: str, devices: tuple[DeviceInfo, ...]) -> SpecItem:
        # Every item of a file runs run_case under the same parent, so all have the fixture
        # closure the first one resolved: handed on through Function's ``fixtureinfo``, as
        # pytest's own parametrisation hands on one closure to all its Functions. Resolving it
        # per item was half of the collection time of a large spec.
        item = SpecItem.from_parent(self, name=name, callobj=run_case, fixtureinfo=self._fixtures)
        self._fixtures = self._fixtures or getattr(item, "_fixtureinfo", None)
        item.stash[CASE] = case
        item.stash[CANDIDATES] = devices
        device = devices[0]
        if len(devices) == 1:
            item.stash[DEVICE] = device
        for text in dict.fromkeys(
            ("aibench", case.format, case.framework, case.metric, device.kind)
        ):
            marker = mark_name(text)
            if marker:
                item.add_marker(self._mark(marker))
        item.extra_keyword_matches.update({case.name, case.identifier, label})
        return item

    def _mark(self, name: str) -> pytest.MarkDecorator:
        """The mark of that name, declared and made once per file."""
        if name not in self._marks:
            register_mark(self.config, name)
            self._marks[name] = getattr(pytest.mark, name)
        return self._marks[name]
