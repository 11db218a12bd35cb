"""Hub downloads into the models folder: a download cut off halfway continues from where it stopped, a file whose
bytes do not match the sha256 the hub names is deleted. Against a small HTTP server on loopback that answers
like the hub (HEAD with the LFS sha256 and size, GET with byte ranges); nothing reaches the real hub.

    pytest tests/test_model_download.py -q
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from assistant.core.errors import InputError
from assistant.model_download import PARTIAL, fetch_file

BLOB = bytes(range(256)) * 4096  # 1 MiB


class FakeHubFile(BaseHTTPRequestHandler):
    """One file. ``server.cut_after``: bytes after which the next GET drops the connection (then cleared);
    ``server.body``: what GET sends (the hub's sha256 is always BLOB's)."""

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self.send_response(302)
        self.send_header("X-Linked-Etag", f'"{hashlib.sha256(BLOB).hexdigest()}"')
        self.send_header("X-Linked-Size", str(len(BLOB)))
        self.send_header("Location", self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        body, start = self.server.body, 0
        self.server.ranges.append(self.headers.get("Range"))
        if self.headers.get("Range"):
            start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut, self.server.cut_after = self.server.cut_after, None
        self.wfile.write(body[start:cut] if cut else body[start:])
        if cut:
            self.wfile.flush()
            self.close_connection = True


@pytest.fixture
def hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHubFile)
    server.body, server.cut_after, server.ranges = BLOB, None, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_download_cut_off_halfway_continues_from_where_it_stopped(hub, tmp_path):
    endpoint = f"http://127.0.0.1:{hub.server_address[1]}"
    hub.cut_after = len(BLOB) // 2
    with pytest.raises(httpx.HTTPError):
        fetch_file("owner/repo", "model.gguf", tmp_path / "model.gguf", tmp_path / PARTIAL, endpoint)
    part = next((tmp_path / PARTIAL).iterdir())
    assert part.stat().st_size == len(BLOB) // 2 and not (tmp_path / "model.gguf").exists()

    target = fetch_file("owner/repo", "model.gguf", tmp_path / "model.gguf", tmp_path / PARTIAL, endpoint)
    assert hub.ranges == [None, f"bytes={len(BLOB) // 2}-"]  # the second try asked only for the rest
    assert target.read_bytes() == BLOB and not part.exists()


def test_a_file_that_does_not_match_the_hub_sha256_is_deleted(hub, tmp_path):
    endpoint = f"http://127.0.0.1:{hub.server_address[1]}"
    hub.body = BLOB[:-1] + b"\x00"
    with pytest.raises(InputError, match="does not match the hub's sha256"):
        fetch_file("owner/repo", "model.gguf", tmp_path / "model.gguf", tmp_path / PARTIAL, endpoint)
    assert not (tmp_path / "model.gguf").exists() and not any((tmp_path / PARTIAL).iterdir())
