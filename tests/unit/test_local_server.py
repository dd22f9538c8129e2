"""The stand-in harness knows that what answers on its URL is its own server (CI, 2026-11-30:
two stand-ins shared a port and one scenario's smoke ran against the other's server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests import local_server, standin_server


class _Answers200(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def squatter() -> Iterator[int]:
    """Another process's server on a port, answering every GET."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers200)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_port_someone_else_answers_on_is_never_taken_for_the_stand_in(squatter, tmp_path: Path, monkeypatch) -> None:
    if not standin_server.STANDIN.exists():
        pytest.skip(f"the vLLM stand-in is not at {standin_server.STANDIN}")
    ports = iter([squatter, local_server.free_port()])
    monkeypatch.setattr(local_server, "free_port", lambda: next(ports))
    with standin_server.standin(tmp_path) as url:
        assert not url.endswith(f":{squatter}")
        assert httpx.get(f"{url}/version").json() == {"version": "0.28.0"}  # the squatter answers {}
    monkeypatch.setattr(local_server, "free_port", lambda: squatter)
    with pytest.raises(AssertionError, match="3 ports in a row were taken"), standin_server.standin(tmp_path):
        pass


def test_ports_are_never_handed_out_twice() -> None:
    ports = [local_server.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
