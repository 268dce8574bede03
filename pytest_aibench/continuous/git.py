"""The repository under test, through the ``git`` command line: commits chosen by range, date
or count, and clean work trees at a commit (``git worktree``, never the user's own).

Nothing the repository holds may steer git or this code: output is NUL-separated (a commit
subject may hold any other character, git's record separator included), user revisions follow
``--end-of-options`` (``--output=FILE`` is a revision that does not exist, not an option), and
every command runs with the repository's hooks off (``core.hooksPath=/dev/null``: a
``post-checkout`` hook would run in every work tree)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import AibenchError

_FORMAT = "--format=%H%x00%ct%x00%s"  # with -z: a NUL after each commit too
_FIELDS = 3
_NO_HOOKS = ("-c", "core.hooksPath=/dev/null")


class RepositoryError(AibenchError):
    """A git command on the repository failed; its message quotes git's."""


@dataclass(frozen=True)
class Commit:
    id: str
    time: str  # committer date, ISO 8601 in UTC (so that times sort as text)
    subject: str

    @property
    def short(self) -> str:
        return self.id[:10]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *_NO_HOOKS, "-C", str(repo), *args],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise RepositoryError(f"cannot run git: {exc}") from None
    if done.returncode != 0:
        problem = done.stderr.strip() or f"exit code {done.returncode}"
        raise RepositoryError(f"{repo}: git {' '.join(args)}: {problem}")
    return done.stdout


def _parse(out: str) -> list[Commit]:
    """``git log -z`` with :data:`_FORMAT`: hash, time and subject, each ended by a NUL."""
    fields = out.split("\0")
    if fields and fields[-1] in ("", "\n"):
        fields.pop()
    commits = []
    for at in range(0, len(fields) - _FIELDS + 1, _FIELDS):
        commit_id, seconds, subject = fields[at : at + _FIELDS]
        time = datetime.fromtimestamp(int(seconds), timezone.utc).isoformat()
        commits.append(Commit(commit_id.strip("\n"), time, subject))
    return commits


def resolve(repo: Path, revision: str) -> Commit:
    """The commit a revision (hash, tag, branch, ``HEAD~3``) names."""
    found = _parse(
        git(repo, "log", "-z", "-1", _FORMAT, "--end-of-options", f"{revision}^{{commit}}", "--")
    )
    if not found:
        raise RepositoryError(f"{repo}: {revision!r} names no commit")
    return found[0]


def select(
    repo: Path,
    *,
    revisions: str = "HEAD",
    since: str | None = None,
    last: int | None = None,
    step: int = 1,
) -> list[Commit]:
    """Commits oldest first along the first-parent line: ``revisions`` a range (``A..B``: after
    A up to B) or a tip, optionally only those since a date or the last N; then every
    ``step``-th, counted back from the newest, which is always kept."""
    args = ["log", "-z", "--first-parent", "--reverse", _FORMAT]
    if since:
        args.append(f"--since={since}")
    if last:
        args.append(f"--max-count={last}")  # applied before --reverse: the newest N
    chosen = _parse(git(repo, *args, "--end-of-options", revisions, "--"))
    return every(chosen, step)


def every(commits: Sequence[Commit], step: int) -> list[Commit]:
    """Every ``step``-th commit counted back from the newest (FAI-PEP's ``--step``)."""
    if step < 1:
        raise ValueError(f"--step must be 1 or more, not {step}")
    return list(commits[(len(commits) - 1) % step :: step]) if commits else []


def between(repo: Path, good: str, bad: str) -> list[Commit]:
    """The commits after ``good`` up to ``bad`` (oldest first) on the first-parent line from
    ``bad``; an error unless ``good`` is an ancestor of ``bad``."""
    good_id, bad_id = resolve(repo, good).id, resolve(repo, bad).id
    if good_id == bad_id:
        raise RepositoryError(f"{repo}: {good} and {bad} are one commit: nothing to bisect")
    ancestor = subprocess.run(
        ["git", *_NO_HOOKS, "-C", str(repo), "merge-base", "--is-ancestor", good_id, bad_id],
        check=False,
    )
    if ancestor.returncode != 0:
        raise RepositoryError(f"{repo}: {good} is not an ancestor of {bad}: nothing to bisect")
    return select(repo, revisions=f"{good_id}..{bad_id}")


@contextmanager
def worktree(repo: Path, commit: Commit) -> Iterator[Path]:
    """A clean, detached work tree at ``commit`` in a temporary folder, removed afterwards;
    the user's own work tree and index are never touched."""
    parent = Path(tempfile.mkdtemp(prefix=f"aibench-{commit.short}-"))
    tree = parent / "tree"
    git(repo, "worktree", "add", "--detach", "--force", "--", str(tree), commit.id)
    try:
        yield tree
    finally:
        try:
            git(repo, "worktree", "remove", "--force", str(tree))
        except RepositoryError:
            git(repo, "worktree", "prune")
        shutil.rmtree(parent, ignore_errors=True)


def fetch(repo: Path) -> None:
    """``git fetch`` from the repository's remotes, when it has any."""
    if git(repo, "remote").strip():
        git(repo, "fetch", "--quiet", "--all")


def tip(repo: Path, branch: str) -> Commit:
    """The newest commit of ``branch``: its remote-tracking branch when there is one (after
    fetch), else the local branch."""
    for name in (f"refs/remotes/origin/{branch}", f"refs/heads/{branch}", branch):
        done = subprocess.run(
            [
                "git",
                *_NO_HOOKS,
                "-C",
                str(repo),
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                f"{name}^{{commit}}",
            ],
            capture_output=True,
            check=False,
        )
        if done.returncode == 0:
            return resolve(repo, name)
    raise RepositoryError(f"{repo}: no branch {branch!r}")
