"""The spec collector: which files pytest collects as specs, and a broken spec an error of its
own file only. Its own plugin object; collect.py makes the items, loaded once a spec is found."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .spec.reader import SPEC_SUFFIXES

if TYPE_CHECKING:
    from .collect import SpecFile
    from .devices.base import DeviceInfo
    from .session import RunState


# A framework's own JSON files, by the names it gives them: model data beside a spec in a
# folder (genai_config.json and Hugging Face's tokenizer.json have a "model" field, as a spec
# does). Named on the command line, they are read as specs, and say so when they are not.
FRAMEWORK_FILES = frozenset({"genai_config.json", "tokenizer.json", "tokenizer_config.json"})


class SpecCollector:
    """Spec files made pytest items: pytest collects the specs --aibench-spec names (instead of
    its default paths when the command line names none), and a broken spec is an error of its
    own file only. Registered as its own plugin; spec files reach it through
    ``config.stash[COLLECTION]``."""

    def __init__(self, run: RunState) -> None:
        self.run = run
        self.config = run.config
        self.settings = run.settings
        self.broken_specs: set[str] = set()  # node ids of the spec files that failed to collect
        self._other_collection_errors = 0

    @property
    def devices(self) -> list[DeviceInfo]:
        return self.run.fleet.devices

    @property
    def references(self) -> dict[tuple[str, str], str]:
        return self.run.references

    def add_spec_args(self) -> None:
        """Make pytest collect the specs: instead of its default paths when the command line
        names no paths, beside them otherwise."""
        specs = self.settings.spec
        for path in specs:
            if not path.exists():
                raise pytest.UsageError(f"--aibench-spec {path}: no such file or folder")
        if not specs:
            return
        named = [str(path.resolve()) for path in specs]
        explicit = self.settings.specs_from_command_line
        if self.config.args_source == pytest.Config.ArgsSource.ARGS:
            if explicit:
                self.config.args.extend(arg for arg in named if arg not in self.config.args)
        elif explicit:
            self.config.args[:] = named  # pytest --aibench-spec X runs X, not the testpaths
        else:  # specs from the ini file join the default paths, unless those hold them already
            # (pytest 8.0 collects only the inner one of two nested arguments)
            self.config.args.extend(arg for arg in named if not self._under_args(Path(arg)))

    def _arg_paths(self) -> set[Path]:
        invoked = self.config.invocation_params.dir
        return {(invoked / arg.split("::")[0]).resolve() for arg in self.config.args}

    def _under_args(self, path: Path) -> bool:
        return any(path == folder or folder in path.parents for folder in self._arg_paths())

    @cached_property
    def _explicit_paths(self) -> set[Path]:
        return self._arg_paths()  # read at collection, once add_spec_args has run

    @cached_property
    def _spec_roots(self) -> tuple[Path, ...]:
        roots = {path.resolve() for path in self.settings.spec}
        roots.update(p for p in self._explicit_paths if p.suffix.lower() in SPEC_SUFFIXES)
        return tuple(roots)

    def named_explicitly(self, path: Path) -> bool:
        return path.resolve() in self._explicit_paths

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> SpecFile | None:
        if file_path.suffix.lower() not in SPEC_SUFFIXES:
            return None
        resolved = file_path.resolve()
        if file_path.name in FRAMEWORK_FILES and resolved not in self._spec_roots:
            return None
        if any(resolved == root or root in resolved.parents for root in self._spec_roots):
            from .collect import SpecFile  # the spec readers, only where there are specs

            return SpecFile.from_parent(parent, path=file_path)
        return None

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Tests that use the aibench fixture carry the aibench mark, as spec items do."""
        for item in items:
            if (
                isinstance(item, pytest.Function)
                and "aibench" in item.fixturenames
                and item.get_closest_marker("aibench") is None
            ):
                item.add_marker("aibench")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and report.nodeid not in self.broken_specs:
            self._other_collection_errors += 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """A broken spec is an error of its own file only: when every collection error came
        from a spec, the other items still run (pytest would stop them all)."""
        if self.broken_specs and not self._other_collection_errors:
            session.config.option.continue_on_collection_errors = True
