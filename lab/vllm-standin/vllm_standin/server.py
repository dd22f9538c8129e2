"""HTTP plumbing: routes, API-key check, JSON and SSE responses (HTTP/1.1, keep-alive)."""

from __future__ import annotations

import json
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vllm_standin.errors import ApiError
from vllm_standin.metrics import Metrics
from vllm_standin.openai_api import App


def _dumps(body) -> str:
    # Compact, like FastAPI/pydantic's JSON (lab-notes bodies have no spaces).
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


class StandinHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # uvicorn sets SO_REUSEADDR too; quick restarts in drills

    def __init__(self, address, app: App, metrics: Metrics):
        super().__init__(address, Handler, bind_and_activate=False)
        self.app = app
        self.metrics = metrics


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as uvicorn sets: without it a small write that follows another unacked one
    # waits for the client's delayed ACK (~40 ms on Linux), e.g. each SSE event after the first.
    disable_nagle_algorithm = True
    server_version = "uvicorn"  # vLLM's server header; the stand-in banner is elsewhere
    sys_version = ""

    # routes: path -> {method: handler name}
    ROUTES = {
        "/health": {"GET": "h_health"},
        "/ping": {"GET": "h_health", "POST": "h_health"},
        "/version": {"GET": "h_version"},
        "/metrics": {"GET": "h_metrics"},
        "/tokenize": {"POST": "h_tokenize"},
        "/v1/models": {"GET": "h_models"},
        "/v1/chat/completions": {"POST": "h_chat"},
        "/v1/completions": {"POST": "h_completions"},
        # SageMaker-style entry to the same engine; outside vLLM's guarded prefixes.
        "/invocations": {"POST": "h_invocations"},
    }
    # vLLM's API-key middleware guards these prefixes only (vllm 0.32.0:
    # entrypoints/serve/middleware/authenticate.py, GUARDED_PREFIX; vllm issue #58144):
    # /invocations, /tokenize, /metrics, /health and /version answer without the key.
    GUARDED_PREFIXES = ("/v1", "/v2", "/inference", "/cohere")

    @property
    def app(self) -> App:
        return self.server.app

    def log_message(self, fmt, *args):  # uvicorn-style access log on stderr
        pass

    def _access_log(self, status: int) -> None:
        host, port = self.client_address[:2]
        phrase = HTTPStatus(status).phrase
        sys.stderr.write(f'INFO:     {host}:{port} - "{self.command} {self.path} '
                         f'{self.request_version}" {status} {phrase}\n')
        sys.stderr.flush()

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        body_bytes = self._read_body()
        # vLLM's auth middleware runs before routing and guards only its prefixes.
        if path.startswith(self.GUARDED_PREFIXES) and not self._authorized():
            return self._send_json(401, {"error": "Unauthorized"})  # lab-notes, exact body
        methods = self.ROUTES.get(path)
        if methods is None:
            return self._send_json(404, {"detail": "Not Found"})  # FastAPI's default
        if self.command not in methods:
            return self._send_json(405, {"detail": "Method Not Allowed"})
        try:
            getattr(self, methods[self.command])(body_bytes)
        except ApiError as err:
            self._send_json(err.status, err.body)

    def _authorized(self) -> bool:
        key = self.app.config.api_key
        return not key or self.headers.get("Authorization", "") == f"Bearer {key}"

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json_body(self, raw: bytes) -> dict:
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            # GUESS: vLLM answers invalid JSON with a 400 BadRequestError (pydantic wording).
            raise ApiError(400, f"JSON decode error: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Input should be a valid dictionary")
        return body

    # --- responses --------------------------------------------------------------------
    def _send(self, status: int, payload: bytes, content_type: str | None) -> None:
        """A whole response in ONE write: headers and body written separately cost ~40 ms a
        response (Nagle + the client's delayed ACK) when TCP_NODELAY is off."""
        self.send_response(status)
        if content_type is not None:
            self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self._headers_buffer.append(b"\r\n" + payload)  # end_headers() with the body appended
        self.flush_headers()
        self._access_log(status)

    def _send_json(self, status: int, body) -> None:
        self._send(status, _dumps(body).encode(), "application/json")

    def _send_sse(self, events) -> None:
        """Server-sent events over chunked transfer encoding, flushed per event."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self._access_log(200)
        try:
            for event in events:
                data = event if isinstance(event, str) else _dumps(event)
                payload = f"data: {data}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            events.close()  # client went away: abort the request (frees its slot)
            self.close_connection = True

    # --- endpoints --------------------------------------------------------------------
    def h_health(self, _raw):
        # Real vLLM answers with an empty Response(): no content-type, content-length 0.
        self._send(200 if self.app.engine.healthy else 503, b"", None)

    def h_version(self, _raw):
        self._send_json(200, {"version": self.app.version_text})

    def h_metrics(self, _raw):
        text = self.server.metrics.render().encode()
        self._send(200, text, "text/plain; version=0.0.4; charset=utf-8")

    def h_models(self, _raw):
        self._send_json(200, self.app.models())

    def h_tokenize(self, raw):
        self._send_json(200, self.app.tokenize(self._json_body(raw)))

    def h_chat(self, raw):
        self._respond(self.app.chat(self._json_body(raw)))

    def h_completions(self, raw):
        self._respond(self.app.completion(self._json_body(raw)))

    def h_invocations(self, raw):
        # vLLM routes /invocations by the request's shape: messages -> chat, prompt -> completion.
        body = self._json_body(raw)
        if "messages" in body:
            return self._respond(self.app.chat(body))
        if "prompt" in body:
            return self._respond(self.app.completion(body))
        self._send_json(400, {"error": {"message": "Cannot determine the request type of /invocations: give "
                                        "messages or prompt (STAND-IN wording)", "type": "BadRequestError",
                                        "param": None, "code": 400}})

    def _respond(self, result) -> None:
        if isinstance(result, dict):
            self._send_json(200, result)
        else:
            self._send_sse(result)
