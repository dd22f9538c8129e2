"""Differential test: the same requests against real vLLM 0.32.0 (serving the scripted tiny
dense Qwen3) and the vLLM stand-in (VLLM_STANDIN_VERSION=0.32.0), started with the same flags.

A difference is a stand-in bug (real vLLM is the reference); known ones: standin_bugs.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.realvllm.compare import Reply, differences
from tests.realvllm.standin_bugs import STANDIN_BUGS, check, params
from tests.realvllm.support import API_KEY, LOG_DIR, REPO, TIMINGS, VLLM_VERSION, serve

pytestmark = pytest.mark.realvllm

STANDIN = REPO / "lab" / "vllm-standin" / "bin" / "vllm"
MODEL = serve.SERVED_NAME
LIMIT = serve.MAX_MODEL_LEN
USER = [{"role": "user", "content": "What is 2+2?"}]
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Case:
    name: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(AUTH))
    values: str = ""  # which scripted values to compare: "chat", "completion" or none
    fit_prompt: int = 0  # replace the user message with one of exactly this many prompt tokens


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": USER, **extra}


STREAM = {"stream": True, "stream_options": {"include_usage": True}}
OFF = {"chat_template_kwargs": {"enable_thinking": False}}
CASES = [
    Case("models", "GET", "/v1/models"),
    Case("version", "GET", "/version"),
    Case("tokenize_prompt", "POST", "/tokenize", {"model": MODEL, "prompt": "hello world"}),
    Case("tokenize_messages", "POST", "/tokenize", {"model": MODEL, "messages": USER}),
    Case("chat", "POST", "/v1/chat/completions", chat(), values="chat"),
    Case("chat_stream", "POST", "/v1/chat/completions", chat(**STREAM)),
    Case("chat_stream_no_usage", "POST", "/v1/chat/completions", chat(stream=True)),
    Case("chat_thinking_off", "POST", "/v1/chat/completions", chat(**OFF), values="chat"),
    Case("chat_thinking_off_stream", "POST", "/v1/chat/completions", chat(**OFF, **STREAM)),
    # Real vLLM stops at EOS whatever max_tokens allows.
    Case("chat_max_tokens_64", "POST", "/v1/chat/completions", chat(max_tokens=64), values="chat"),
    Case("completions", "POST", "/v1/completions",
         {"model": MODEL, "prompt": "hello world", "max_tokens": 5}, values="completion"),
    Case("prompt_over_limit", "POST", "/v1/chat/completions", chat(), values="chat",
         fit_prompt=LIMIT + 1),
    Case("max_tokens_too_large", "POST", "/v1/chat/completions", chat(max_tokens=LIMIT + 904),
         values="chat"),
    # Since 0.20 vLLM clamps max_tokens to what is left: 3 tokens here, so "length".
    Case("prompt_plus_max_tokens_over_limit", "POST", "/v1/chat/completions", chat(max_tokens=100),
         values="chat", fit_prompt=LIMIT - 3),
    Case("unknown_model", "POST", "/v1/chat/completions", {**chat(), "model": "foo"}, values="chat"),
    Case("missing_api_key_models", "GET", "/v1/models", headers={}),
    Case("missing_api_key_chat", "POST", "/v1/chat/completions", chat(), headers={}),
    Case("wrong_api_key_chat", "POST", "/v1/chat/completions", chat(),
         headers={"Authorization": "Bearer wrong"}),
    # Endpoints outside /v1 stay open with --api-key (lab notes).
    Case("no_key_version", "GET", "/version", headers={}),
    Case("no_key_health", "GET", "/health", headers={}),
    Case("no_key_tokenize", "POST", "/tokenize", {"model": MODEL, "prompt": "hi"}, headers={}),
]

def standin_command(model_dir: Path, port: int) -> list[str]:
    # The same flags as real vLLM gets (serve.serve_command), launched from the stand-in.
    args = serve.serve_command(model_dir, port, api_key=API_KEY)[1:]
    return [sys.executable, str(STANDIN), *args]


@pytest.fixture(scope="module")
def standin(tiny_models: dict[str, Path]) -> Iterator[str]:
    port = serve.free_port()
    env = {**os.environ, "VLLM_STANDIN_VERSION": VLLM_VERSION, "VLLM_STANDIN_LOAD_SECONDS": "0"}
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(LOG_DIR / "standin.log", "wb") as log:
        proc = subprocess.Popen(standin_command(tiny_models["dense"], port), stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, proc, 60)
        TIMINGS["stand-in start"] = time.monotonic() - start
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _wait(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (LOG_DIR / "standin.log").read_text()[-3000:]
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"stand-in not healthy at {url}")


@pytest.fixture(scope="module")
def real(real_vllm: Any) -> str:
    server = real_vllm.get(api_key=API_KEY)
    # /health alone does not prove a working engine (lab notes): one real request first.
    r = httpx.post(server.url + "/v1/chat/completions", json=chat(), headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    return server.url


def fitted_messages(url: str, tokens: int) -> list[dict[str, Any]]:
    """A user message whose chat prompt is exactly `tokens` tokens on THIS server's tokenizer.

    Both tokenizers count one token per repeated word, so the count is linear in the words.
    """
    def count(words: int) -> int:
        msgs = [{"role": "user", "content": " ".join(["hello"] * words)}]
        r = httpx.post(url + "/tokenize", json={"model": MODEL, "messages": msgs}, headers=AUTH, timeout=60)
        r.raise_for_status()
        return r.json()["count"]

    words = max(1, tokens - count(10) + 10)
    for _ in range(4):
        got = count(words)
        if got == tokens:
            return [{"role": "user", "content": " ".join(["hello"] * words)}]
        words += tokens - got
    raise AssertionError(f"could not fit a prompt of {tokens} tokens at {url}")


def fetch(url: str, case: Case) -> Reply:
    body = case.body
    if case.fit_prompt:
        body = {**(body or {}), "messages": fitted_messages(url, case.fit_prompt)}
    with httpx.Client(base_url=url, timeout=120) as client:
        with client.stream(case.method, case.path, json=body, headers=case.headers) as r:
            raw = r.read().decode()
            ctype = r.headers.get("content-type", "")
    reply = Reply(status=r.status_code, content_type=ctype)
    if ctype.startswith("text/event-stream"):
        for line in raw.splitlines():
            if line.startswith("data: "):
                data = line[len("data: "):]
                reply.events.append(data if data == "[DONE]" else json.loads(data))
        return reply
    try:
        reply.body = json.loads(raw)
    except json.JSONDecodeError:
        reply.body = raw
    return reply


BY_NAME = {case.name: case for case in CASES}


@pytest.mark.parametrize("name", params(list(BY_NAME), STANDIN_BUGS))
def test_standin_matches_real_vllm(real: str, standin: str, name: str) -> None:
    case = BY_NAME[name]
    check(name, differences(fetch(real, case), fetch(standin, case), case.values))

