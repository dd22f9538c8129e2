"""Smoke checks over the server's HTTP API. Each test is one named check.

Order matters and is deliberate: the long-prompt check runs last because a server that cannot
prefill it (no chunked prefill on unified memory) loses its engine, and every check after it
would then fail too, hiding which configuration error is the cause.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest

from vllm_fleet.serving import releases
from vllm_fleet.smoke.parsers import describe_response as _describe, spec_counters

REASONING_PROMPT = [{"role": "user", "content": "What is 2 + 2? Think it through briefly, then answer."}]
SHORT_PROMPT = [{"role": "user", "content": "What is 2 + 2? Answer with the number only."}]
THINK_TAGS = ("<think>", "</think>")
NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}
# Enough for the reasoning to start on a real model; what follows it is irrelevant here.
REASONING_MAX_TOKENS = 128


def _leaked_tags(text: str | None) -> list[str]:
    return [tag for tag in THINK_TAGS if tag in (text or "")]


def test_health(api) -> None:
    status = api.health()
    assert status == 200, f"/health answered {status}, not 200: the engine is not up"


def test_models(api, settings) -> None:
    resp = api.get("/v1/models")
    assert resp.status_code == 200, f"/v1/models failed with {_describe(resp)}"
    data = resp.json().get("data") or []
    ids = [m.get("id") for m in data]
    if settings.model:
        assert ids == [settings.model], (
            f"the server serves {ids} but {settings.model!r} was expected; check --served-model-name "
            "and the model of the host's profile")
    if settings.max_model_len:
        served = [m.get("max_model_len") for m in data]
        assert served == [settings.max_model_len], (
            f"the server's max_model_len is {served[0] if len(served) == 1 else served}, expected "
            f"{settings.max_model_len}; the unit runs other --max-model-len than the profile says")


def test_version(api, settings) -> None:
    if not settings.vllm_version:
        pytest.skip("no --vllm-version given to compare with")
    resp = api.get("/version")
    assert resp.status_code == 200, f"/version failed with {_describe(resp)}"
    served = resp.json().get("version")
    assert releases.version_tuple(served) == releases.version_tuple(settings.vllm_version), (
        f"the server runs vLLM {served}, expected {settings.vllm_version}; the container runs another image")


def test_real_completion(api) -> None:
    # /health stays 200 after vLLM's engine died (lab-notes), so only a real completion proves
    # the server can serve.
    resp = api.chat(SHORT_PROMPT, max_tokens=16, **NO_THINKING)
    assert resp.status_code == 200, (
        f"/health may say OK, but a real completion failed with {_describe(resp)}; "
        "the engine is not serving: read the unit's journal and restart it")
    body = resp.json()
    choice = body["choices"][0]
    assert (choice["message"].get("content") or "").strip(), "the completion returned no text"
    assert body.get("usage", {}).get("completion_tokens", 0) > 0, "the completion reports 0 generated tokens"


def test_reasoning_parsed(api, record_property) -> None:
    field = api.reasoning_field()
    message = api.chat_ok(REASONING_PROMPT, max_tokens=REASONING_MAX_TOKENS)["choices"][0]["message"]
    content, reasoning = message.get("content"), message.get(field)
    leaked = _leaked_tags(content)
    record_property("reasoning_field", field)
    assert not leaked, (
        f"{' and '.join(leaked)} leaked into content: the server runs without --reasoning-parser qwen3")
    assert reasoning and str(reasoning).strip(), (
        f"no reasoning text in message.{field} (vLLM {api.version() or '?'} puts it there); "
        "the server runs without --reasoning-parser qwen3 or thinking is disabled by default")


def test_reasoning_parsed_streaming(api) -> None:
    field = api.reasoning_field()
    reasoning, content = [], []
    for chunk in api.chat_stream(REASONING_PROMPT, max_tokens=REASONING_MAX_TOKENS):
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning.append(delta.get(field) or "")
            content.append(delta.get("content") or "")
    leaked = _leaked_tags("".join(content))
    assert not leaked, (
        f"{' and '.join(leaked)} leaked into streamed content: the server runs without --reasoning-parser qwen3")
    assert "".join(reasoning).strip(), (
        f"no reasoning text in the stream's delta.{field}; the server runs without --reasoning-parser qwen3")


def test_thinking_off(api) -> None:
    field = api.reasoning_field()
    message = api.chat_ok(SHORT_PROMPT, max_tokens=32, **NO_THINKING)["choices"][0]["message"]
    content = message.get("content") or ""
    assert content.strip(), "with enable_thinking false the answer must be in content, but content is empty"
    assert not message.get(field), (
        f"with enable_thinking false message.{field} should be empty but holds {message.get(field)!r}; "
        "the chat template ignores chat_template_kwargs")
    assert not _leaked_tags(content), "think tags in content with thinking off"


TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_tool_calling(api, settings) -> None:
    if not settings.expect_tools:
        pytest.skip("the profile does not enable auto tool choice (pass --expect-tools to check it)")
    messages = [{"role": "user", "content": "What is the weather in Paris? Use the tool."}]
    body = api.chat_ok(messages, tools=[TOOL], tool_choice="auto", max_tokens=256, **NO_THINKING)
    calls = body["choices"][0]["message"].get("tool_calls") or []
    assert calls, ("no tool_calls in the answer; check --enable-auto-tool-choice and --tool-call-parser "
                   f"(content was {str(body['choices'][0]['message'].get('content'))[:120]!r})")
    call = calls[0]
    assert call.get("type") == "function" and call.get("id"), f"malformed tool call entry: {call}"
    assert call["function"].get("name") == "get_weather", f"the tool call names {call['function'].get('name')!r}"
    try:
        args = json.loads(call["function"].get("arguments") or "")
    except json.JSONDecodeError:
        pytest.fail(f"the tool call's arguments are not JSON: {call['function'].get('arguments')!r}; "
                    "the tool-call parser does not fit the model's output format")
    assert isinstance(args, dict), f"the tool call's arguments are not a JSON object: {args!r}"


def _spec(api) -> tuple[float, float]:
    resp = api.metrics()
    assert resp.status_code == 200, f"/metrics failed with {_describe(resp)}"
    counters = spec_counters(resp.text)
    assert counters is not None, ("no vllm:spec_decode_* counters in /metrics: the server runs without "
                                  "--speculative-config")
    return counters


def test_spec_decode_metrics(api, settings, record_property) -> None:
    if not settings.expect_spec_decode:
        pytest.skip("the profile has no speculative_config (pass --expect-spec-decode to check it)")
    accepted0, drafted0 = _spec(api)
    # ignore_eos: a short scripted answer would give one or two draft steps, too few to judge.
    api.chat_ok(SHORT_PROMPT, max_tokens=64, ignore_eos=True, **NO_THINKING)
    accepted1, drafted1 = _spec(api)
    drafted, accepted = drafted1 - drafted0, accepted1 - accepted0
    assert drafted > 0, "vllm:spec_decode_num_draft_tokens_total did not grow after a completion: no drafts are made"
    rate = accepted / drafted
    record_property("spec_decode_acceptance_rate", round(rate, 4))
    record_property("spec_decode_draft_tokens", drafted)
    print(f"speculative decoding acceptance: {rate:.1%} ({accepted:g} of {drafted:g} draft tokens)")


# Every way into the model that vLLM serves (or may serve) over HTTP. vLLM's own --api-key
# guards only /v1, /v2, /inference and /cohere: without a proxy in front, /invocations answers
# a full completion and /tokenize anything, to anyone (vllm issue #58144).
INFERENCE_PATHS = (
    ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("GET", "/v1/models"),
    ("POST", "/v1/responses"), ("POST", "/v1/embeddings"), ("POST", "/invocations"), ("POST", "/tokenize"),
    ("POST", "/detokenize"), ("POST", "/pooling"), ("POST", "/classify"), ("POST", "/score"), ("POST", "/rerank"),
    ("POST", "/v1/score"), ("POST", "/v1/rerank"), ("POST", "/v2/rerank"), ("POST", "/inference/v1/generate"),
)


# vLLM's own --api-key guards only paths under these (AuthenticationMiddleware, vllm
# entrypoints/openai/api_server.py at v0.32.0; issue #58144): /invocations, /tokenize and
# /detokenize answer anyone. Behind the proxy every path needs the key.
VLLM_GUARDED_PREFIXES = ("/v1", "/v2", "/inference", "/cohere")


def test_api_key_enforced(api, settings, record_property) -> None:
    """No path that reaches the model answers without the key (behind the proxy), or at least
    none vLLM's own --api-key guards (vLLM itself, on loopback); with the key, requests work."""
    if not settings.api_key:
        pytest.skip("no --api-key-file given")
    model = api.served_model()
    body = {"model": model, "messages": [{"role": "user", "content": "ping"}], "prompt": "ping", "max_tokens": 1,
            "text": "ping", "tokens": [1], "input": "ping"}
    open_paths, open_anyway = [], []
    with httpx.Client(base_url=settings.url, timeout=settings.timeout, verify=settings.ca_file or True) as anonymous:
        for method, path in INFERENCE_PATHS:
            resp = anonymous.request(method, path, json=body if method == "POST" else None)
            if resp.is_success:
                guarded = settings.expect_proxy or path.startswith(VLLM_GUARDED_PREFIXES)
                (open_paths if guarded else open_anyway).append(f"{method} {path} ({resp.status_code})")
    if open_anyway:
        # Reported, not failed: an instance on loopback trusts this host's users by design.
        record_property("open_without_key", ", ".join(open_anyway))
    assert not open_paths, (
        f"answered without the API key: {', '.join(open_paths)}. "
        + ("Every path behind the proxy needs the key: check the proxy's configuration"
           if settings.expect_proxy else "vLLM runs without --api-key: check the unit's arguments"))
    with_key = api.get("/v1/models")
    assert with_key.status_code == 200, f"/v1/models with the API key failed with {_describe(with_key)}"


def test_over_limit_prompt(api, record_property) -> None:
    limit = api.max_model_len()
    messages, tokens = api.prompt_of(limit + 16)
    record_property("prompt_tokens", tokens)
    resp = api.chat(messages, max_tokens=1, **NO_THINKING)
    message = _describe(resp)
    assert resp.status_code == 400, f"a {tokens}-token prompt over max_model_len {limit} got {message}, not HTTP 400"
    assert f"maximum context length is {limit}" in message, f"the 400 does not name the context length: {message}"
    assert api.health() == 200, "the server is unhealthy after rejecting an over-long prompt"


def test_long_prompt(api, settings, record_property) -> None:
    limit = api.max_model_len()
    max_tokens = 8
    target = math.ceil(settings.long_prompt_ratio * limit)
    # Up to 0.17 prompt + max_tokens over the limit is a 400 (facts); stay under it everywhere.
    messages, tokens = api.prompt_of(target, ceiling=limit - max_tokens)
    record_property("prompt_tokens", tokens)
    resp = api.chat(messages, max_tokens=max_tokens, **NO_THINKING)
    assert resp.status_code == 200, (
        f"a {tokens}-token prompt ({tokens / limit:.0%} of max_model_len {limit}) failed with "
        f"{_describe(resp)}; without chunked prefill a long prompt can kill the engine "
        "(check --enable-chunked-prefill and the unit's journal)")
    status = api.health()
    assert status == 200, (
        f"/health answered {status} after a {tokens}-token prompt: the long prefill took the engine "
        "down; enable chunked prefill (--enable-chunked-prefill)")
