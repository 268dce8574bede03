"""The build cache: one folder per commit and build recipe (``<builds>/<commit id>-<recipe>/``,
the recipe a digest of the build command and the product's name) holding what the build
produced, its log and ``build.json``. A folder that exists is reused, failed builds included
(rebuilding the same commit the same way fails the same way), as FAI-PEP reuses
``--exec_dir``; a changed build command builds again. A build is
made in a temporary folder beside the cache and renamed into place when it is finished, so an
interrupted build leaves nothing that a later run would mistake for a build."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_json
from ..devices.host import host_info
from ..devices.lease import lease
from ..devices.processes import run_process
from .git import Commit, worktree

PRODUCT = "product"  # the folder, inside a commit's build folder, that keeps what it built


@dataclass(frozen=True)
class Build:
    """One commit's build: ``program`` is what pytest runs (``None`` when it failed)."""

    commit: Commit
    folder: Path
    ok: bool
    reason: str  # why it failed; empty when it did not
    program: Path | None
    repo: str

    @property
    def log(self) -> Path:
        return self.folder / "build.log"

    @property
    def info_file(self) -> Path:
        """The file ``--aibench-build-info`` reads: the commit, stored with every run."""
        return self.folder / "build.json"

    def info(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            **self.commit.to_dict(),
            "ok": self.ok,
            "reason": self.reason,
            "program": str(self.program) if self.program else None,
        }


@dataclass(frozen=True)
class BuildCache:
    root: Path
    command: str  # run by the shell in a clean work tree at the commit
    product: str  # what the build produces, relative to the work tree (a file or a folder)
    timeout: float = 3600.0
    hold_host: bool = False  # build under the host's lease (--same-host)

    def get(self, repo: Path, commit: Commit) -> Build:
        """The commit's build, from the cache or built now."""
        folder = self.root.resolve() / f"{commit.id}-{self.recipe}"
        if (folder / "build.json").is_file():
            return _read(folder, commit, repo)
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{commit.id}.partial-"))
        try:
            with self._lease():
                kept, reason = self._build(repo, commit, partial)
            program = folder / PRODUCT / kept if kept else None
            build = Build(commit, folder, bool(kept), reason, program, str(repo.resolve()))
            write_json(partial / "build.json", build.info())
            try:
                os.replace(partial, folder)
            except OSError:  # another process built it meanwhile: theirs is as good
                return _read(folder, commit, repo)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return build

    @property
    def recipe(self) -> str:
        """What else than the commit makes a build: its command and what it keeps."""
        made = json.dumps([self.command, self.product]).encode("utf-8")
        return hashlib.sha256(made).hexdigest()[:12]

    def _lease(self) -> AbstractContextManager[None]:
        """The host's lease while building, when asked: benchmarks on this host hold it while
        they run, so a build waits for them and they wait for it."""
        if not self.hold_host:
            return nullcontext()

        return lease(host_info())

    def _build(self, repo: Path, commit: Commit, out: Path) -> tuple[str | None, str]:
        """Build in a clean work tree (nothing the build starts outlives it or its timeout:
        devices/processes.py) and keep the product in ``out``: its name there, or ``None``
        and why not."""
        with worktree(repo, commit) as tree:
            env = {**os.environ, "AIBENCH_COMMIT": commit.id, "AIBENCH_REPO": str(repo)}
            done = run_process(
                ["sh", "-c", self.command], env=env, cwd=str(tree), timeout=self.timeout
            )
            (out / "build.log").write_text(done.stdout + done.stderr, encoding="utf-8")
            if done.timed_out:
                return None, f"the build ran past {self.timeout:g} s"
            if done.returncode != 0:
                return None, f"the build exited {done.returncode} (its build.log says why)"
            built = _product(tree, self.product)
            if built is None:
                return None, f"the build produced no {self.product}"
            if not built.is_relative_to(tree.resolve()):  # a committed link to outside files
                return None, f"{self.product} leads out of the work tree (to {built}): refused"
            name = "tree" if built == tree.resolve() else built.name  # --program . : all of it
            kept = out / PRODUCT / name
            kept.parent.mkdir()
            if built.is_dir():
                shutil.copytree(built, kept, symlinks=True, ignore=shutil.ignore_patterns(".git"))
            else:
                shutil.copy2(built, kept)
            return name, ""


def _product(tree: Path, pattern: str) -> Path | None:
    """What the build produced: ``pattern`` is a path, or a glob (``dist/*.whl``) that matches
    one path."""
    if not any(char in pattern for char in "*?["):
        path = (tree / pattern).resolve()
        return path if path.exists() else None
    found = sorted(tree.glob(pattern))
    return found[-1].resolve() if found else None


def _read(folder: Path, commit: Commit, repo: Path) -> Build:
    info = json.loads((folder / "build.json").read_text(encoding="utf-8"))
    program = Path(info["program"]) if info.get("program") else None
    return Build(
        commit,
        folder,
        bool(info["ok"]),
        str(info.get("reason", "")),
        program,
        str(info.get("repo", repo)),
    )
