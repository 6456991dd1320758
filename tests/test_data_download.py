"""Download and lookup order against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from data_fixtures import closed_port_url, http_server, write_tgz  # noqa: F401

from cnnzoo.data.download import DownloadFailed, download
from cnnzoo.data.locate import Resource, locate
from cnnzoo.data.flowers17 import verify_archive
from cnnzoo.errors import DataError

PAYLOAD = b"tiny dataset file\n" * 1000


def resource(**kw) -> Resource:
    return Resource(what="Tiny", names=("tiny.bin",), accept=Path.is_file, expect="tiny.bin", **kw)


@pytest.fixture
def served(http_server):
    base, folder = http_server
    (folder / "tiny.bin").write_bytes(PAYLOAD)
    return f"{base}/tiny.bin"


def test_good_checksum_is_cached_under_its_name(served, tmp_path):
    cache = tmp_path / "cache"
    path = download(served, cache / "tiny.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest(), progress=False)
    assert path.read_bytes() == PAYLOAD
    assert [p.name for p in cache.iterdir()] == ["tiny.bin"]


def test_bad_checksum_leaves_nothing_in_the_cache(served, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="tiny.bin downloaded from .* has sha256"):
        download(served, cache / "tiny.bin", sha256="0" * 64, progress=False)
    assert list(cache.iterdir()) == []


def test_failed_verification_leaves_nothing(http_server, tmp_path):
    base, folder = http_server
    write_tgz(folder / "17flowers.tgz", {"jpg/image_0001.jpg": b"x"})
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="holds 1 of the 1360 images"):
        download(f"{base}/17flowers.tgz", cache / "17flowers.tgz", verify=verify_archive, progress=False)
    assert list(cache.iterdir()) == []


def test_http_error_is_a_failed_download(http_server, tmp_path):
    base, _ = http_server
    with pytest.raises(DownloadFailed, match="404"):
        download(f"{base}/absent.bin", tmp_path / "cache" / "absent.bin", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_locate_downloads_into_the_keras_cache(served, tmp_path):
    res = resource(url=served, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    path = locate(res, spec_path=None, data_dir=None, keras_cache=tmp_path / "keras", progress=True)
    assert path == tmp_path / "keras" / "tiny.bin" and path.read_bytes() == PAYLOAD


def test_data_dir_wins_over_the_cache_and_the_download(tmp_path):
    for folder in ("data", "keras"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "tiny.bin").write_text(folder)
    res = resource(url=closed_port_url("tiny.bin"))
    assert locate(res, spec_path=None, data_dir=tmp_path / "data", keras_cache=tmp_path / "keras") == \
        tmp_path / "data" / "tiny.bin"
    assert locate(res, spec_path=None, data_dir=None, keras_cache=tmp_path / "keras") == \
        tmp_path / "keras" / "tiny.bin"


def test_unreachable_host_names_the_file_and_every_place(tmp_path):
    res = resource(url=closed_port_url("tiny.bin"))
    with pytest.raises(DataError) as err:
        locate(res, spec_path=None, data_dir=tmp_path / "data", keras_cache=tmp_path / "keras", progress=False)
    text = str(err.value)
    assert "Tiny data not found: expected tiny.bin" in text
    assert str(tmp_path / "data" / "tiny.bin") in text and str(tmp_path / "keras" / "tiny.bin") in text
    assert "failed" in text and "CNNZOO_DATA_DIR" in text
    assert not (tmp_path / "keras").exists() or list((tmp_path / "keras").iterdir()) == []


def test_explicit_path_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="data.path .*nope does not exist"):
        locate(resource(), spec_path=str(tmp_path / "nope"), data_dir=None)


@pytest.fixture
def dropping_server():
    """A URL whose server promises len(PAYLOAD) bytes, sends half, and closes the connection."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(PAYLOAD))
            connection.sendall(PAYLOAD[: len(PAYLOAD) // 2])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/tiny.bin"
    thread.join(timeout=5)
    listener.close()


def test_a_dropped_connection_leaves_nothing_a_later_run_would_trust(dropping_server, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DownloadFailed, match="IncompleteRead|incomplete|bytes"):
        download(dropping_server, cache / "tiny.bin", progress=False)
    assert list(cache.iterdir()) == []


# --- integrity (security review) ---------------------------------------------------------------

def test_a_file_larger_than_its_resource_allows_is_refused(served, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(DownloadFailed, match="18,000 bytes, more than the 1,000"):
        download(served, cache / "tiny.bin", progress=False, max_bytes=1000)
    assert list(cache.iterdir()) == []


def test_https_is_never_redirected_to_http():
    import urllib.request

    from cnnzoo.data.download import _NoDowngrade

    handler = _NoDowngrade()
    request = urllib.request.Request("https://data.example/17flowers.tgz")
    with pytest.raises(DownloadFailed, match="not https; refused"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://mirror.example/17flowers.tgz")
    assert handler.redirect_request(request, None, 302, "Found", {}, "https://mirror.example/x").full_url == \
        "https://mirror.example/x"


def test_parts_left_by_a_killed_download_are_removed_and_live_ones_kept(served, tmp_path):
    import os
    import subprocess
    import sys

    cache = tmp_path / "cache"
    cache.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = cache / f".tiny.tmp-{dead.stdout.strip()}-0123abcd.bin"
    live = cache / f".tiny.tmp-{os.getppid()}-0123abcd.bin"
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    download(served, cache / "tiny.bin", progress=False)
    assert not stale.exists() and live.exists() and (cache / "tiny.bin").read_bytes() == PAYLOAD


def test_flowers_download_must_match_the_pinned_checksum(http_server, tmp_path):
    from cnnzoo.data.flowers17 import RESOURCE, TOTAL

    base, folder = http_server
    write_tgz(folder / "17flowers.tgz", {f"jpg/image_{n:04d}.jpg": b"\xff\xd8\xff" for n in range(1, TOTAL + 1)})
    cache = tmp_path / "keras"
    with pytest.raises(DataError, match="has sha256 .* but the published checksum is fe38a60f"):
        locate(RESOURCE, spec_path=None, data_dir=None, progress=False, keras_cache=cache,
               url=f"{base}/17flowers.tgz")
    assert list(cache.iterdir()) == []
