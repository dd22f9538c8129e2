"""Real vLLM 0.32.0 (CPU) serving the scripted tiny Qwen3: what the stand-in and the product's
smoke checks assume about reasoning output, filler/length behaviour and metrics.

The module reuses the session's real server (--reasoning-parser qwen3, --api-key); the last
test restarts it WITHOUT the reasoning parser (one server at a time).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.realvllm.support import API_KEY, serve

pytestmark = pytest.mark.realvllm

MODEL = serve.SERVED_NAME
AUTH = {"Authorization": f"Bearer {API_KEY}"}
USER = [{"role": "user", "content": "What is 2+2?"}]


def post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + path, json={"model": MODEL, **body}, headers=AUTH, timeout=120)


@pytest.fixture(scope="module")
def url(real_vllm: Any) -> str:
    return real_vllm.get(api_key=API_KEY).url


def test_thinking_on_splits_reasoning(url: str) -> None:
    r = post(url, "/v1/chat/completions", {"messages": USER})
    assert r.status_code == 200, r.text
    body = r.json()
    message = body["choices"][0]["message"]
    assert message["reasoning"] == "The user asks."
    assert message["content"] == "\n\n4"
    assert "reasoning_content" not in message  # gone since 0.16.0 (vllm_releases.yml)
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 4


def test_thinking_off_has_no_reasoning(url: str) -> None:
    r = post(url, "/v1/chat/completions",
             {"messages": USER, "chat_template_kwargs": {"enable_thinking": False}})
    message = r.json()["choices"][0]["message"]
    assert (message["content"], message["reasoning"]) == ("4", None)


def test_stream_reasoning_then_content(url: str) -> None:
    body = {"model": MODEL, "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=AUTH, timeout=120) as r:
        lines = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    events = [json.loads(x) for x in lines[:-1]]
    assert lines[-1] == "[DONE]"
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("reasoning") or "" for d in deltas) == "The user asks."
    assert "".join(d.get("content") or "" for d in deltas) == "\n\n4"
    assert events[-1]["choices"] == [] and "usage" in events[-1]


def test_unscripted_prompt_loops_on_filler(url: str) -> None:
    r = post(url, "/v1/completions", {"prompt": "hello world", "max_tokens": 6})
    choice = r.json()["choices"][0]
    assert (choice["text"], choice["finish_reason"]) == (" filler" * 6, "length")


def test_metrics_names(url: str) -> None:
    text = httpx.get(url + "/metrics", timeout=30).text
    for name in ("vllm:num_requests_running", "vllm:kv_cache_usage_perc",
                 "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
                 "vllm:time_to_first_token_seconds_bucket", "vllm:generation_tokens_total"):
        assert name in text, name
    assert f'model_name="{MODEL}"' in text


def test_without_reasoning_parser_think_leaks_into_content(real_vllm: Any) -> None:
    server = real_vllm.get(api_key=API_KEY, reasoning_parser=False)
    r = post(server.url, "/v1/chat/completions", {"messages": USER})
    message = r.json()["choices"][0]["message"]
    assert message["content"] == "The user asks.</think>\n\n4"
    assert message.get("reasoning") is None
