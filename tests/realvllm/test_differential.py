"""Differential test: the same requests against real vLLM 0.32.0 and the vLLM stand-in
(VLLM_STANDIN_VERSION=0.32.0), started with the same flags, once per scripted tiny Qwen3: the
dense one (Qwen3ForCausalLM) and the MoE one (Qwen3MoeForCausalLM, what the fleet deploys).

A difference is a stand-in bug (real vLLM is the reference); known ones: standin_bugs.py.
The MoE cases are keyed "moe:NAME" there and carry the real_vllm_model("moe") marker, which
makes conftest run them after every dense test: one MoE server start, no second dense one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.local_server import local_server
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
    # vLLM guards /v1, /v2, /inference and /cohere only: everything else stays open with
    # --api-key, /invocations (full inference) included (vllm issue #58144). The stand-in must
    # show the same hole, or the lab could not see what the proxy closes.
    Case("no_key_version", "GET", "/version", headers={}),
    Case("no_key_health", "GET", "/health", headers={}),
    Case("no_key_tokenize", "POST", "/tokenize", {"model": MODEL, "prompt": "hi"}, headers={}),
    Case("no_key_invocations_chat", "POST", "/invocations", chat(), headers={}, values="chat"),
    Case("no_key_invocations_completion", "POST", "/invocations",
         {"model": MODEL, "prompt": "hello world", "max_tokens": 5}, headers={}, values="completion"),
    Case("no_key_v2_guarded", "GET", "/v2/models", headers={}),
    Case("no_key_inference_guarded", "POST", "/inference/v1/generate", {"model": MODEL}, headers={}),
]

def standin_command(model_dir: Path, port: int) -> list[str]:
    # The same flags as real vLLM gets (serve.serve_command), launched from the stand-in.
    args = serve.serve_command(model_dir, port, api_key=API_KEY)[1:]
    return [sys.executable, str(STANDIN), *args]


@contextmanager
def run_standin(model_dir: Path, arch: str) -> Iterator[str]:
    env = {**os.environ, "VLLM_STANDIN_VERSION": VLLM_VERSION, "VLLM_STANDIN_LOAD_SECONDS": "0"}
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with local_server(lambda port: standin_command(model_dir, port), LOG_DIR, env, timeout=60) as (port, _log):
        TIMINGS[f"stand-in start ({arch})"] = time.monotonic() - start
        yield f"http://127.0.0.1:{port}"


class Backends:
    """Real vLLM and the stand-in for one tiny model at a time, started on first use.

    Not a parametrized fixture: the test's one parameter is the key "[MODEL:]CASE", so a known
    stand-in bug can be marked per model at collection (standin_bugs.params) and conftest can
    order the items by their model marker. Consecutive cases of one model then reuse the pool's
    server and this stand-in; a change of model starts both anew.
    """

    def __init__(self, pool: Any, model_dirs: dict[str, Path]) -> None:
        self.pool = pool
        self.model_dirs = model_dirs
        self.real: Any = None  # the pool's server last checked with a real request
        self.arch: str | None = None  # the model the running stand-in was given
        self.standin: ExitStack | None = None
        self.standin_url = ""

    def urls(self, arch: str) -> tuple[str, str]:
        """(real vLLM URL, stand-in URL), both serving the tiny `arch` model."""
        server = self.pool.get(arch, api_key=API_KEY)
        if server is not self.real:
            # /health alone does not prove a working engine (lab notes): one real request first.
            r = httpx.post(server.url + "/v1/chat/completions", json=chat(), headers=AUTH, timeout=120)
            assert r.status_code == 200, r.text
            self.real = server
        if arch != self.arch:
            self.close()
            self.standin = ExitStack()
            self.standin_url = self.standin.enter_context(run_standin(self.model_dirs[arch], arch))
            self.arch = arch
        return server.url, self.standin_url

    def close(self) -> None:
        if self.standin is not None:
            self.standin.close()
        self.standin, self.arch = None, None


@pytest.fixture(scope="module")
def backends(real_vllm: Any, tiny_models: dict[str, Path]) -> Iterator[Backends]:
    pair = Backends(real_vllm, tiny_models)
    yield pair
    pair.close()


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
# Dense cases keep their bare names (the keys known_standin_diffs.json always had); MoE ones
# are "moe:NAME". The same corpus for both: the stand-in ignores the model's architecture, so
# anything MoE-specific in real vLLM's replies would show up here as a difference.
KEYS = [*BY_NAME, *(f"moe:{name}" for name in BY_NAME)]


def split_key(key: str) -> tuple[str, str]:
    """Key "moe:chat" -> ("moe", "chat"); a bare case name is the dense model's."""
    arch, _, name = key.rpartition(":")
    return arch or "dense", name


def model_mark(key: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.real_vllm_model(split_key(key)[0])]


# Tries for one real stream whose tokens were not merged (see merged_deltas): with up to ~15 %
# of these streams merged on this 2-core machine, 5 merged tries in a row is under 1e-4.
REAL_STREAM_TRIES = 5


def merged_deltas(reply: Reply) -> str | None:
    """Which chunk of real vLLM's stream holds more than one token's text, or None.

    vLLM merges a streamed request's deltas when its engine gets ahead of the API server
    (RequestOutputCollector.put, vllm/v1/engine/output_processor.py): at random, 0-15 % of
    these short streams on this machine (2026-11-27). Real vLLM decides that by timing, not by
    anything the stand-in could mirror, so such a reply is no reference for the event sequence;
    the comparison itself stays as strict. With the scripted model each token's text is either
    reasoning or content, and the last token (EOS) has none, so a delta with both fields, or a
    finish_reason "stop" chunk with text, is a merge.
    """
    for event in reply.events:
        choices = (event.get("choices") or []) if isinstance(event, dict) else []  # "[DONE]" is a str
        for choice in choices:
            delta = choice.get("delta") or {}
            if "reasoning" in delta and "content" in delta:
                return f"a delta with both reasoning and content: {delta}"
            if choice.get("finish_reason") == "stop" and (delta.get("content") or delta.get("reasoning")):
                return f"text in the finish_reason=stop chunk: {delta}"
    return None


def fetch_real(url: str, case: Case) -> Reply:
    """fetch() from real vLLM, retried while its stream shows merged deltas."""
    merge: str | None = None
    for _ in range(REAL_STREAM_TRIES):
        reply = fetch(url, case)
        merge = merged_deltas(reply)
        if merge is None:
            return reply
    pytest.fail(f"real vLLM merged stream deltas in all {REAL_STREAM_TRIES} tries, last: {merge}; "
                "no reference to compare the stand-in with (is the machine overloaded?)")


@pytest.mark.parametrize("key", params(KEYS, STANDIN_BUGS, extra_marks=model_mark))
def test_standin_matches_real_vllm(backends: Backends, key: str) -> None:
    arch, name = split_key(key)
    case = BY_NAME[name]
    real, standin = backends.urls(arch)
    check(key, differences(fetch_real(real, case), fetch(standin, case), case.values))


def test_merged_deltas_recognises_real_vllms_merges() -> None:
    # Delta sequences real vLLM 0.32.0 streamed for one thinking-on request, sent 15 times.
    def stream(*deltas: dict[str, str]) -> Reply:
        """An SSE reply of these deltas, the last one with finish_reason "stop"."""
        last = len(deltas) - 1
        events: list[Any] = [{"choices": [{"delta": delta, "finish_reason": "stop" if i == last else None}]}
                             for i, delta in enumerate(deltas)]
        return Reply(status=200, content_type="text/event-stream", events=[*events, "[DONE]"])

    role = {"role": "assistant", "content": ""}
    # Merges within one field change nothing that is compared (compare.collapse).
    assert merged_deltas(stream(role, {"reasoning": "The"}, {"reasoning": " user asks"}, {"reasoning": "."},
                                {"content": "\n\n"}, {"content": "4"}, {"content": ""})) is None
    assert merged_deltas(stream(role, {"content": "\n\n4", "reasoning": "The user asks."}, {"content": ""}))
    assert merged_deltas(stream(role, {"reasoning": "The user asks."}, {"content": "\n\n4"}))
