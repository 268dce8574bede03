"""The model cache against a real HTTP server on loopback."""

import hashlib
import json
import threading
from pathlib import Path

import pytest
from pytest import MonkeyPatch

from pytest_aibench import cache as cache_module
from pytest_aibench.cache import ModelCache
from pytest_aibench.errors import CacheError
from pytest_aibench.spec.load import load_cases
from pytest_aibench.spec.model import Case

from .conftest import FileServer, Route

MODEL = b"model bytes " * 1000
MODEL_MD5 = hashlib.md5(MODEL).hexdigest()


def case_with(tmp_path: Path, files: dict[str, dict[str, str]]) -> Case:
    spec = tmp_path / "spec" / "m.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(
        json.dumps(
            {
                "model": {"name": "net", "format": "onnx", "files": files},
                "tests": [{"metric": "delay"}],
            }
        )
    )
    return load_cases(spec)[0]


def remote(url: str, md5: str | None = MODEL_MD5) -> dict[str, dict[str, str]]:
    entry = {"filename": "net.onnx", "location": url}
    return {"model": {**entry, "md5": md5} if md5 else entry}


@pytest.fixture
def model_cache(tmp_path: Path) -> ModelCache:
    return ModelCache(root=tmp_path / "cache", timeout=1.0)


def cache_files(root: Path) -> list[str]:
    """Every file of the model's cache folder (which holds one folder per source)."""
    return sorted(p.name for p in (root / "onnx" / "net").rglob("*") if p.is_file())


def test_download_lands_at_format_name_filename_and_is_fetched_once(
    tmp_path: Path, file_server: FileServer, model_cache: ModelCache
) -> None:
    file_server.routes["/m"] = Route(body=MODEL)
    case = case_with(tmp_path, remote(file_server.url("/m")))
    path = model_cache.fetch(case.model_files[0], case)
    assert path.parent.parent == tmp_path / "cache" / "onnx" / "net" and path.name == "net.onnx"
    assert path.read_bytes() == MODEL
    assert model_cache.fetch(case.model_files[0], case) == path
    assert file_server.hits["/m"] == 1


def test_unchanged_cached_file_is_not_hashed_again(
    tmp_path: Path, file_server: FileServer, model_cache: ModelCache, monkeypatch: MonkeyPatch
) -> None:
    file_server.routes["/m"] = Route(body=MODEL)
    case = case_with(tmp_path, remote(file_server.url("/m")))
    model_cache.fetch(case.model_files[0], case)
    hashed: list[Path] = []

    def counted_md5_of(path: Path) -> str:
        hashed.append(path)
        return "x"

    monkeypatch.setattr(cache_module, "md5_of", counted_md5_of)
    model_cache.fetch(case.model_files[0], case)
    model_cache.fetch(case.model_files[0], case)
    assert hashed == []


def test_cached_file_with_a_wrong_md5_is_downloaded_again(
    tmp_path: Path, file_server: FileServer, model_cache: ModelCache
) -> None:
    file_server.routes["/m"] = Route(body=MODEL)
    case = case_with(tmp_path, remote(file_server.url("/m")))
    target = model_cache.fetch(case.model_files[0], case)
    target.write_bytes(b"corrupted")
    assert model_cache.fetch(case.model_files[0], case).read_bytes() == MODEL
    assert file_server.hits["/m"] == 2


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (Route(status=404, body=b"no"), "HTTP 404"),
        (Route(status=500, body=b"boom"), "HTTP 500"),
        (Route(body=MODEL[:100], declared_length=len(MODEL)), f"got 100 of {len(MODEL)} bytes"),
        (Route(body=b"something else"), f"the spec expects {MODEL_MD5}"),
        (Route(body=MODEL, delay=2.0), "timeout 1 s"),
    ],
)
def test_failed_downloads_leave_nothing_in_the_cache(
    tmp_path: Path, file_server: FileServer, model_cache: ModelCache, route: Route, message: str
) -> None:
    file_server.routes["/m"] = route
    case = case_with(tmp_path, remote(file_server.url("/m")))
    with pytest.raises(CacheError) as caught:
        model_cache.fetch(case.model_files[0], case)
    assert message in str(caught.value), str(caught.value)
    assert file_server.url("/m") in str(caught.value)
    assert "model.files.model" in str(caught.value)
    assert [n for n in cache_files(tmp_path / "cache") if not n.endswith(".lock")] == []


def test_wrong_md5_after_download_keeps_the_previous_file(
    tmp_path: Path, file_server: FileServer, model_cache: ModelCache
) -> None:
    file_server.routes["/m"] = Route(body=MODEL)
    case = case_with(tmp_path, remote(file_server.url("/m")))
    target = model_cache.fetch(case.model_files[0], case)
    target.write_bytes(b"old")  # a stale copy
    file_server.routes["/m"] = Route(body=b"changed upstream")
    with pytest.raises(CacheError, match="cache was left as it was"):
        model_cache.fetch(case.model_files[0], case)
    assert target.read_bytes() == b"old"
    spec_text = case.spec_path.read_text()
    assert MODEL_MD5 in spec_text  # the spec is never rewritten


def test_concurrent_fetches_download_once(
    tmp_path: Path, file_server: FileServer, model_cache: ModelCache
) -> None:
    file_server.routes["/m"] = Route(body=MODEL, delay=0.3)
    case = case_with(tmp_path, remote(file_server.url("/m")))
    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                ModelCache(root=tmp_path / "cache").fetch(case.model_files[0], case)
            )
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert file_server.hits["/m"] == 1


def test_local_files_resolve_relative_to_the_spec_and_are_checked(
    tmp_path: Path, model_cache: ModelCache
) -> None:
    (tmp_path / "spec" / "weights").mkdir(parents=True)
    (tmp_path / "spec" / "weights" / "w.bin").write_bytes(MODEL)
    case = case_with(
        tmp_path, {"model": {"filename": "w.bin", "location": "weights/w.bin", "md5": MODEL_MD5}}
    )
    assert model_cache.fetch(case.model_files[0], case) == tmp_path / "spec/weights/w.bin"
    (tmp_path / "spec" / "weights" / "w.bin").write_bytes(b"edited")
    with pytest.raises(CacheError, match=f"the spec expects {MODEL_MD5}"):
        model_cache.fetch(case.model_files[0], case)


def test_root_model_dir_locations(tmp_path: Path) -> None:
    (tmp_path / "root" / "models").mkdir(parents=True)
    (tmp_path / "root" / "models" / "w.bin").write_bytes(MODEL)
    case = case_with(tmp_path, {"model": {"filename": "w.bin", "location": "//models/w.bin"}})
    with pytest.raises(CacheError, match="pass --aibench-root-model-dir"):
        ModelCache(root=tmp_path / "cache").fetch(case.model_files[0], case)
    found = ModelCache(root=tmp_path / "cache", root_model_dir=tmp_path / "root").fetch(
        case.model_files[0], case
    )
    assert found == tmp_path / "root" / "models" / "w.bin"


def test_missing_local_file_says_where_it_looked(tmp_path: Path, model_cache: ModelCache) -> None:
    case = case_with(tmp_path, {"model": {"filename": "w.bin", "location": "absent.bin"}})
    with pytest.raises(CacheError, match="found nothing there"):
        model_cache.fetch(case.model_files[0], case)


def test_progress_is_reported_for_downloads(tmp_path: Path, file_server: FileServer) -> None:
    file_server.routes["/m"] = Route(body=MODEL)
    case = case_with(tmp_path, remote(file_server.url("/m")))
    seen = []
    ModelCache(
        root=tmp_path / "c", progress=lambda url, done, total: seen.append((url, done, total))
    ).fetch(case.model_files[0], case)
    assert seen[-1] == (file_server.url("/m"), len(MODEL), len(MODEL))


def test_downloaded_files_are_readable_by_others(
    tmp_path: Path, file_server: FileServer, model_cache: ModelCache
) -> None:
    file_server.routes["/m"] = Route(body=MODEL)
    case = case_with(tmp_path, remote(file_server.url("/m")))
    mode = model_cache.fetch(case.model_files[0], case).stat().st_mode
    assert mode & 0o777 == 0o644
