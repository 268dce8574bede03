"""The model cache: find each spec file's bytes, download them once, check their MD5.

Remote files live at ``<cache>/<format>/<model name>/<source key>/<filename>``. A download
streams into a temporary file beside the target and is renamed into place only once its size and
MD5 are right, so a failed or interrupted download never leaves a half file that a later run
would trust. xdist workers that need the same file take a lock, so it is fetched once. The spec
file is never rewritten: a wrong MD5 is an error that says what to change.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

from . import __version__
from .atomic import atomic_file, write_text
from .errors import CacheError
from .names import path_component
from .runners.base import CaseFiles
from .spec.model import Case, FileRef

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None

Progress = Callable[[str, int, "int | None"], None]
_CHUNK = 1 << 16
_PROGRESS_EVERY_S = 0.5
DOWNLOAD_RETRIES = 3


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (xdist workers), held while the block runs."""
    if fcntl is None:  # not POSIX: no lock, so parallel workers may fetch a file twice
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class ModelCache:
    root: Path
    root_model_dir: Path | None = None
    timeout: float = 60.0
    progress: Progress | None = None

    def case_files(self, case: Case) -> CaseFiles:
        """The host paths of the case's model, input and golden files, each fetched."""
        return CaseFiles(
            model=tuple((ref, self.fetch(ref, case)) for ref in case.model_files),
            inputs=tuple(
                (ref, self.fetch(ref, case)) for ref in case.input_files if not ref.is_generated
            ),  # made at run time ({HOSTDIR}/x)
            goldens=tuple((ref, self.fetch(ref, case)) for ref in case.golden_files),
        )

    def model_md5(self, files: CaseFiles) -> dict[str, str]:
        """The MD5 of each model file (remembered by size and mtime: hashed once)."""
        return {ref.name: self.md5(path) for ref, path in files.model if path.is_file()}

    def fetch(self, ref: FileRef, case: Case) -> Path:
        """The host path of ``ref``'s bytes, downloaded or checked as needed."""
        if ref.is_remote:
            return self._fetch_remote(ref, case)
        source = self.local_source(ref, case)
        if not source.exists():
            raise CacheError(
                f"{case.spec_path} {ref.where}: expected a file at {source} "
                f"(location {ref.location!r}), found nothing there"
            )
        if ref.md5 and ref.md5 != "directory" and source.is_file():
            self._check_md5(source, ref, case, what=str(source))
        return source

    def local_source(self, ref: FileRef, case: Case) -> Path:
        """Where a non-URL location points: ``//x`` under the root model dir, relative to the
        spec file's folder, or absolute."""
        location = ref.location
        if location.startswith("//"):
            if self.root_model_dir is None:
                raise CacheError(
                    f"{case.spec_path} {ref.where}: location {location!r} is under the root "
                    "model dir; pass --aibench-root-model-dir DIR"
                )
            return self.root_model_dir / location[2:]
        if location.startswith("file://"):
            from urllib.request import url2pathname

            return Path(url2pathname(location[len("file://") :]))
        return case.spec_path.parent / location

    def cached_path(self, ref: FileRef, case: Case) -> Path:
        """``<cache>/<format>/<model name>/<source key>/<filename>``: the source key (a digest of
        the URL) keeps apart two specs whose model and file names agree but whose bytes come
        from different places. Every component is a safe name (spec load checked them)."""
        source = hashlib.sha1(ref.location.encode(), usedforsecurity=False).hexdigest()[:16]
        return self.root.joinpath(
            path_component(case.format, "format"),
            path_component(case.name, "model name"),
            source,
            path_component(ref.filename, "filename"),
        )

    def _fetch_remote(self, ref: FileRef, case: Case) -> Path:
        target = self.cached_path(ref, case)
        with file_lock(target.with_name(f".{target.name}.lock")):
            if target.is_file() and (ref.md5 is None or self.md5(target) == ref.md5.lower()):
                return target
            self._download(ref, case, target)
        return target

    def md5(self, path: Path) -> str:
        """MD5 of ``path``, remembered by size and mtime so an unchanged file is hashed once."""
        identity = _identity(path)
        with contextlib.suppress(OSError, ValueError, KeyError):
            remembered = json.loads(self._memo(path).read_text(encoding="utf-8"))
            if {key: remembered.get(key) for key in identity} == identity:
                return str(remembered["md5"])
        return self._remember(path, md5_of(path))

    def _memo(self, path: Path) -> Path:
        key = hashlib.sha1(str(path.resolve()).encode(), usedforsecurity=False).hexdigest()
        return self.root / ".md5" / f"{key}.json"

    def _remember(self, path: Path, digest: str) -> str:
        record = {**_identity(path), "md5": digest}
        write_text(self._memo(path), json.dumps(record))
        return digest

    def _check_md5(self, path: Path, ref: FileRef, case: Case, what: str) -> None:
        got = self.md5(path)
        if got != str(ref.md5).lower():
            raise CacheError(
                f"{case.spec_path} {ref.where}: MD5 of {what} is {got}, the spec expects "
                f"{ref.md5}. If the new file is intended, put its MD5 in the spec; otherwise "
                "restore the file"
            )

    def _download(self, ref: FileRef, case: Case, target: Path) -> None:
        with atomic_file(target) as out:  # a failed check below leaves the cache as it was
            digest = self._stream(ref.location, out, case, ref)
            if ref.md5 and digest != ref.md5.lower():
                raise CacheError(
                    f"{case.spec_path} {ref.where}: downloaded {ref.location} but its MD5 is "
                    f"{digest}, the spec expects {ref.md5}. The file at that URL changed or the "
                    "spec's md5 is wrong; the cache was left as it was"
                )
        self._remember(target, digest)

    def _stream(self, url: str, out: BinaryIO, case: Case, ref: FileRef) -> str:
        """Download ``url`` into ``out``; its MD5. Connection errors, time-outs and the answers
        worth another try (429, 5xx) are retried with back-off by urllib3's ``Retry``."""
        import urllib3

        where = f"{case.spec_path} {ref.where}"
        digest = hashlib.md5(usedforsecurity=False)
        retries = urllib3.Retry(
            total=DOWNLOAD_RETRIES,
            backoff_factor=0.5,
            raise_on_status=False,
            status_forcelist=(408, 429, 500, 502, 503, 504),
        )
        pool = urllib3.PoolManager(retries=retries, timeout=urllib3.Timeout(self.timeout))
        try:
            # Our own length check below says how much came; urllib3's would only raise.
            response = pool.request(
                "GET",
                url,
                preload_content=False,
                enforce_content_length=False,
                headers={"User-Agent": f"pytest-aibench/{__version__}"},
            )
            try:
                if response.status >= 400:
                    raise CacheError(
                        _download_failed(
                            where, url, f"HTTP {response.status} {response.reason or ''}".strip()
                        )
                    )
                total = _content_length(response.headers.get("Content-Length"))
                received = self._copy(response, out, digest, url, total)
            finally:
                response.close()  # a cut-short answer leaves a socket no pool should reuse
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise CacheError(
                _download_failed(
                    where,
                    url,
                    f"{reason} (timeout {self.timeout:g} s, tried {DOWNLOAD_RETRIES + 1} times)",
                )
            ) from None
        finally:
            pool.clear()  # closes its sockets now, not whenever the collector gets to them
        if total is not None and received != total:
            raise CacheError(
                _download_failed(
                    where, url, f"the download was cut short: got {received} of {total} bytes"
                )
            )
        return digest.hexdigest()

    def _copy(self, response: Any, out: BinaryIO, digest: Any, url: str, total: int | None) -> int:
        received, last_report = 0, time.monotonic()
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            if self.progress and time.monotonic() - last_report >= _PROGRESS_EVERY_S:
                self.progress(url, received, total)
                last_report = time.monotonic()
        if self.progress:
            self.progress(url, received, total)
        return received


def _download_failed(where: str, url: str, reason: str) -> str:
    return (
        f"{where}: download of {url} failed: {reason}. Check that the URL in the spec is "
        "right and reachable from here, or put the file beside the spec and give its "
        "relative path as the location; nothing was written to the model cache"
    )


def _identity(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _content_length(header: str | None) -> int | None:
    try:
        return int(header) if header is not None else None
    except ValueError:
        return None
