"""Tests of the vLLM STAND-IN (lab/vllm-standin), the lab's test double for `vllm serve`.

Each server is a real subprocess on a free localhost port with no load delay; servers are
module-scoped and shared where a test does not change their state. Expected bodies come from
../shared/lab-notes.md ("Real vLLM on this machine", vLLM 0.32.0) and vllm-facts.md.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.local_server import free_port, wait_until_listening

ROOT = Path(__file__).resolve().parents[2]
VLLM = ROOT / "lab" / "vllm-standin" / "bin" / "vllm"
MODEL = "nvidia/Qwen3.6-35B-A3B-NVFP4"
MAX_LEN = 4096
# The spark profile's rendered `vllm serve` arguments (vllm_fleet serve_args('spark')), with
# host/port/max-model-len adapted to the test. Copied, not imported: the stand-in and its
# tests stay independent of the product.
SPARK_ARGS = [
    MODEL, "--served-model-name", MODEL, "--tensor-parallel-size", "1",
    "--max-model-len", str(MAX_LEN), "--kv-cache-dtype", "fp8",
    "--gpu-memory-utilization", "0.85", "--max-num-seqs", "4",
    "--attention-backend", "flashinfer", "--moe-backend", "marlin",
    "--reasoning-parser", "qwen3", "--tool-call-parser", "qwen3_coder",
    "--enable-chunked-prefill", "--enable-prefix-caching", "--enable-auto-tool-choice",
    "--speculative-config", '{"method":"mtp","moe_backend":"triton","num_speculative_tokens":3}',
]
QUESTION = [{"role": "user", "content": "What is 2+2?"}]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VLLM_") and k != "PATH"}
    env["PATH"] = "/usr/bin:/bin"  # no nvidia-smi unless a test injects one
    env.update({"VLLM_STANDIN_LOAD_SECONDS": "0", "VLLM_STANDIN_TOKEN_SECONDS": "0.001"})
    env.update(extra)
    return env


class Server:
    def __init__(self, args: list[str], log: Path, **env: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(VLLM), "serve", *args, "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=self._log_file, stderr=subprocess.STDOUT, env=_env(**env))
        self.client = httpx.Client(base_url=self.base, timeout=10)

    def wait_ready(self, timeout: float = 10) -> "Server":
        self._log_file.flush()
        assert wait_until_listening(self.proc, self.log, timeout), f"port {self.port} was taken: {self.output()}"
        return self

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=5)
        finally:
            self._log_file.close()


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    servers: list[Server] = []

    def _start(args: list[str], ready: bool = True, **env: str) -> Server:
        log = tmp_path_factory.mktemp("standin") / "server.log"
        server = Server(args, log, **env)
        servers.append(server)
        return server.wait_ready() if ready else server

    yield _start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def spark(start):
    """The spark profile's flags, plus env vars the spark profile sets (facts: 0.28 ignores them)."""
    return start(SPARK_ARGS, VLLM_USE_FLASHINFER_MOE_FP4="0",
                 VLLM_FP8_MOE_BACKEND="flashinfer_cutlass", VLLM_LOGGING_LEVEL="INFO")


@pytest.fixture(scope="module")
def keyed(start):
    """No reasoning parser, no auto tool choice, an API key."""
    return start([MODEL, "--max-model-len", str(MAX_LEN), "--api-key", "sekret"])


@pytest.fixture(scope="module")
def old(start):
    """vLLM 0.15.1: old context-length errors, both reasoning fields, thinking off by default."""
    return start([MODEL, "--max-model-len", "100", "--reasoning-parser", "qwen3",
                  "--default-chat-template-kwargs", '{"enable_thinking": false}'],
                 VLLM_STANDIN_VERSION="0.15.1")


@pytest.fixture(scope="module")
def current(start):
    """vLLM 0.32.0, the version the differential test (tests/realvllm) compares with."""
    return start([MODEL, "--max-model-len", str(MAX_LEN), "--reasoning-parser", "qwen3"],
                 VLLM_STANDIN_VERSION="0.32.0")


def chat(server: Server, headers: dict | None = None, **body) -> httpx.Response:
    body.setdefault("model", MODEL)
    body.setdefault("messages", QUESTION)
    return server.client.post("/v1/chat/completions", json=body, headers=headers)


def long_messages(server: Server, tokens: int) -> list[dict]:
    """Messages whose chat prompt is exactly `tokens` tokens by the server's /tokenize."""
    base = server.client.post("/tokenize", json={"messages": [{"role": "user", "content": ""}]})
    overhead = base.json()["count"]
    return [{"role": "user", "content": " ".join(["word"] * (tokens - overhead))}]


def sse_events(response: httpx.Response) -> list:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(VLLM), *args], capture_output=True, text=True,
                          env=_env(**env), timeout=10)


# --- CLI --------------------------------------------------------------------------------
@pytest.mark.parametrize("args, env, message", [
    (["--bogus-flag", "1"], {}, "vllm: error: unrecognized arguments: --bogus-flag 1"),
    (["--kv-cache-dtype", "fp4"], {}, "argument --kv-cache-dtype: invalid choice: 'fp4'"),
    (["--moe-backend", "bogus"], {}, "argument --moe-backend: invalid choice: 'bogus'"),
    (["--speculative-config", "{bad"], {}, "argument --speculative-config: invalid JSON"),
    (["--moe-backend", "marlin"], {"VLLM_STANDIN_VERSION": "0.15.1"},
     "vllm: error: unrecognized arguments: --moe-backend marlin"),
    (["--attention-backend", "flashinfer"], {"VLLM_STANDIN_VERSION": "0.12.0"},
     "vllm: error: unrecognized arguments: --attention-backend flashinfer"),
    (["--default-chat-template-kwargs", "{}"], {"VLLM_STANDIN_VERSION": "0.12.0"},
     "vllm: error: unrecognized arguments: --default-chat-template-kwargs {}"),
])
def test_cli_argument_errors_exit_2(args, env, message):
    result = run_cli("serve", MODEL, *args, **env)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--enable-auto-tool-choice", "--tool-call-parser", "qwen3"],
     "KeyError: 'invalid tool call parser: qwen3 (chose from {"),
    (["--enable-auto-tool-choice"],
     "TypeError: Error: --enable-auto-tool-choice requires --tool-call-parser"),
    (["--no-enable-chunked-prefill", "--max-model-len", "65536", "--max-num-batched-tokens", "8192"],
     "ValueError: max_num_batched_tokens (8192) is smaller than max_model_len (65536)"),
])
def test_cli_startup_errors_exit_1_before_loading(args, message):
    # vLLM raises these after parsing; the exception escapes, so exit 1, before the load delay.
    start = time.monotonic()
    result = run_cli("serve", MODEL, *args, VLLM_STANDIN_LOAD_SECONDS="30")
    assert result.returncode == 1
    assert message in result.stderr
    assert time.monotonic() - start < 5


def test_cli_version_and_valid_tool_parsers():
    assert run_cli("--version").stdout.strip() == "0.28.0"
    # qwen3_json is registered from 0.32.0 only (wheel vllm/tool_parsers/__init__.py).
    refused = run_cli("serve", MODEL, "--enable-auto-tool-choice", "--tool-call-parser", "qwen3_json")
    assert refused.returncode == 1 and "invalid tool call parser: qwen3_json" in refused.stderr
    for parser in ("hermes", "qwen3_coder", "qwen3_xml"):
        # A bad reasoning parser is checked after the tool parser: reaching it (exit 1 with
        # its error) proves the tool parser name passed, without starting a server.
        result = run_cli("serve", MODEL, "--enable-auto-tool-choice", "--tool-call-parser", parser,
                         "--reasoning-parser", "bogus")
        assert result.returncode == 1
        assert "invalid tool call parser" not in result.stderr
        assert "Reasoning parser 'bogus' not found" in result.stderr


def test_cli_unknown_reasoning_parser_lists_available_ones():
    # vLLM 0.32.0's wording (tests/realvllm compares it with the real parser's error).
    result = run_cli("serve", MODEL, "--reasoning-parser", "bogus")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('KeyError: "Reasoning parser \'bogus\' not found. Available parsers: ')
    assert "deepseek_r1, " in last and "qwen3" in last and last.endswith('"')


def test_banner_env_warnings_and_all_profile_flags_parse(spark):
    out = spark.output()
    assert "vLLM STAND-IN (test double, not vLLM, no GPU)" in out
    assert "Unknown vLLM environment variable detected: VLLM_FP8_MOE_BACKEND" in out
    assert "Unknown vLLM environment variable detected: VLLM_USE_FLASHINFER_MOE_FP4" in out
    assert "detected: VLLM_LOGGING_LEVEL" not in out


def test_load_delay_port_not_listening_then_sigterm_exits_0(start):
    server = start([MODEL], ready=False, VLLM_STANDIN_LOAD_SECONDS="0.8")
    time.sleep(0.3)
    with pytest.raises(httpx.ConnectError):
        server.client.get("/health")
    server.wait_ready()
    assert server.client.get("/health").status_code == 200
    began = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - began < 2


def test_nvidia_smi_is_used_for_gpu_class(start, tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA GB10, [N/A], 12.1'\n")
    smi.chmod(0o755)
    server = start([MODEL], PATH=f"{tmp_path}:/usr/bin:/bin")
    assert "NVIDIA GB10" in server.output() and "Spark-class" in server.output()


# --- basic endpoints --------------------------------------------------------------------
def test_health_version_models(spark):
    health = spark.client.get("/health")
    assert health.status_code == 200 and health.content == b""
    # Real vLLM's empty Response(): no content-type at all.
    assert "content-type" not in health.headers and health.headers["content-length"] == "0"
    assert spark.client.get("/ping").status_code == 200
    assert spark.client.get("/version").json() == {"version": "0.28.0"}
    model = spark.client.get("/v1/models").json()["data"][0]
    assert set(model) == {"id", "object", "created", "owned_by", "root", "parent",
                          "max_model_len", "permission"}
    assert (model["id"], model["owned_by"], model["max_model_len"]) == (MODEL, "vllm", MAX_LEN)
    assert isinstance(model["permission"], list)


def test_tokenize_prompt_and_messages_without_length_check(spark):
    small = spark.client.post("/tokenize", json={"model": MODEL, "prompt": "Hello, world"}).json()
    assert small["count"] == 3 and len(small["tokens"]) == 3
    assert small["max_model_len"] == MAX_LEN
    huge = spark.client.post("/tokenize", json={"prompt": "word " * (MAX_LEN + 10)}).json()
    assert huge["count"] == MAX_LEN + 10  # no length check
    chat_tokens = spark.client.post("/tokenize", json={"messages": QUESTION}).json()
    usage = chat(spark).json()["usage"]
    assert usage["prompt_tokens"] == chat_tokens["count"]  # one tokenizer for both


# --- reasoning / streaming --------------------------------------------------------------
def test_reasoning_with_parser(spark):
    body = chat(spark).json()
    message = body["choices"][0]["message"]
    assert message["reasoning"] == "The user asks."
    assert message["content"] == "\n\n4"
    assert "reasoning_content" not in message
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_without_reasoning_parser_think_text_stays_in_content(keyed):
    body = chat(keyed, headers={"Authorization": "Bearer sekret"}).json()
    assert body["choices"][0]["message"]["content"] == "The user asks.</think>\n\n4"
    assert body["choices"][0]["message"]["reasoning"] is None


def test_thinking_off_per_request(spark):
    message = chat(spark, chat_template_kwargs={"enable_thinking": False}).json()["choices"][0]["message"]
    assert (message["content"], message["reasoning"]) == ("4", None)


def test_thinking_off_by_server_default_request_wins(old):
    off = chat(old).json()["choices"][0]["message"]
    assert (off["content"], off["reasoning"], off["reasoning_content"]) == ("4", None, None)
    on = chat(old, chat_template_kwargs={"enable_thinking": True}).json()["choices"][0]["message"]
    # 0.11.1-0.15.x report both fields (facts §Reasoning output)
    assert on["reasoning"] == on["reasoning_content"] == "The user asks."


def test_streaming_event_sequence(spark):
    with spark.client.stream("POST", "/v1/chat/completions", json={
            "model": MODEL, "messages": QUESTION, "stream": True,
            "stream_options": {"include_usage": True}}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"] for c in chunks[1:-2]]
    kinds = [next(iter(d)) for d in deltas]
    assert kinds == sorted(kinds, key=lambda k: k != "reasoning")  # reasoning before content
    assert "".join(d.get("reasoning", "") for d in deltas) == "The user asks."
    assert "".join(d.get("content", "") for d in deltas) == "\n\n4"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    # The finishing token is EOS (no text): real vLLM 0.32.0 still sends {"content": ""}.
    assert chunks[-2]["choices"][0]["delta"] == {"content": ""}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    # First chunk: prompt_token_ids / prompt_text, null unless asked for.
    assert chunks[0]["prompt_token_ids"] is None and chunks[0]["prompt_text"] is None
    assert all("prompt_token_ids" not in c for c in chunks[1:])
    # 0.28 has no fingerprint: vLLM drops null fields from the usage chunk.
    assert "system_fingerprint" not in chunks[-1]
    assert "prompt_tokens_details" not in chunks[-1]["usage"]


def _stream(server: Server, **body) -> list:
    body = {"model": MODEL, "messages": QUESTION, "stream": True, **body}
    with server.client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        return sse_events(response)[:-1]


def test_streaming_system_fingerprint_on_the_final_message(current):
    with_usage = _stream(current, stream_options={"include_usage": True})
    fingerprint = with_usage[-1]["system_fingerprint"]
    assert fingerprint.startswith("vllm-0.32.0-") and len(fingerprint.rsplit("-", 1)[1]) == 8
    assert with_usage[-1]["choices"] == []
    assert all("system_fingerprint" not in c for c in with_usage[:-1])
    without = _stream(current)
    assert without[-1]["choices"][0]["finish_reason"] == "stop"
    assert without[-1]["system_fingerprint"] == fingerprint
    assert all("system_fingerprint" not in c for c in without[:-1])
    assert without[-1]["choices"][0]["delta"] == {"content": ""}


def test_max_tokens_does_not_pad_real_vllm_stops_at_eos(spark):
    # Real vLLM 0.32.0 (tests/realvllm, case chat_max_tokens_64): max_tokens is only a ceiling.
    body = chat(spark, max_tokens=64).json()
    choice = body["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == ("stop", "\n\n4")
    # 4 reasoning pieces + </think> + "\n\n" + "4" + EOS (counted, no text)
    assert body["usage"]["completion_tokens"] == 8


def test_ignore_eos_fills_to_max_tokens(spark):
    body = chat(spark, max_tokens=20, ignore_eos=True).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 20
    assert choice["message"]["reasoning"] == "The user asks."
    # After the script, EOS (no text), then the tiny model's filler: 20 - 8 = 12 fillers.
    assert choice["message"]["content"] == "\n\n4" + " filler" * 12
    off = chat(spark, max_tokens=5, ignore_eos=True, chat_template_kwargs={"enable_thinking": False})
    assert off.json()["choices"][0]["message"]["content"] == "4" + " filler" * 3
    streamed = _stream(spark, max_tokens=12, ignore_eos=True)
    assert streamed[-1]["choices"][0]["finish_reason"] == "length"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in streamed) == (
        "\n\n4 filler filler filler filler")


def test_max_tokens_below_the_script_truncates(spark):
    short = chat(spark, max_tokens=2).json()
    assert short["choices"][0]["finish_reason"] == "length"
    assert short["choices"][0]["message"]["reasoning"] == "The user"
    # Everything but EOS fits: still "length" (the last token is not EOS).
    seven = chat(spark, max_tokens=7).json()["choices"][0]
    assert (seven["finish_reason"], seven["message"]["content"]) == ("length", "\n\n4")


def test_chat_response_fields(spark, current):
    body = chat(spark).json()
    assert list(body) == ["id", "object", "created", "model", "choices", "service_tier",
                          "system_fingerprint", "usage", "prompt_logprobs", "prompt_token_ids",
                          "prompt_text", "kv_transfer_params", "ec_transfer_params", "metrics"]
    assert all(body[k] is None for k in ("service_tier", "system_fingerprint", "prompt_token_ids",
                                         "prompt_text", "ec_transfer_params", "metrics"))
    asked = chat(spark, return_token_ids=True, return_prompt_text=True).json()
    tokens = spark.client.post("/tokenize", json={"messages": QUESTION}).json()["tokens"]
    assert asked["prompt_token_ids"] == tokens
    assert asked["prompt_text"].endswith("<|im_start|>assistant\n<think>\n")
    fingerprint = chat(current).json()["system_fingerprint"]
    assert fingerprint.startswith("vllm-0.32.0-")
    assert chat(current).json()["system_fingerprint"] == fingerprint  # fixed per server


def test_choice_fields_as_real_vllm_0_32(spark, current):
    # Checked against real vLLM 0.32.0 (tests/realvllm compares only top-level field sets).
    choice = chat(current).json()["choices"][0]
    assert list(choice) == ["index", "message", "logprobs", "finish_reason", "stop_reason",
                            "token_ids", "routed_experts"]
    assert "tool_calls" not in choice["message"]  # 0.32 drops an empty list
    assert chat(spark).json()["choices"][0]["message"]["tool_calls"] == []  # 0.28 sends []
    asked = chat(current, return_token_ids=True).json()["choices"][0]["token_ids"]
    assert len(asked) == 8 and asked[-1] == 151645  # ends with EOS (<|im_end|>)
    text = _complete(current, prompt="hi", max_tokens=2).json()["choices"][0]
    assert list(text) == ["index", "text", "logprobs", "finish_reason", "stop_reason", "token_ids",
                          "prompt_logprobs", "prompt_token_ids", "routed_experts"]


def test_completion_usage_details_null_without_reasoning_parser(keyed):
    body = chat(keyed, headers={"Authorization": "Bearer sekret"}).json()
    assert body["usage"]["completion_tokens_details"] is None


# --- /v1/completions -----------------------------------------------------------------
def _complete(server: Server, **body) -> httpx.Response:
    return server.client.post("/v1/completions", json={"model": MODEL, **body})


def test_completions_unscripted_prompt_fills_like_the_tiny_model(spark, current):
    # Real vLLM 0.32.0 with the tiny model (tests/realvllm/test_real_smoke.py): " filler" x N.
    body = _complete(spark, prompt="hello world", max_tokens=5).json()
    assert list(body) == ["id", "object", "created", "model", "choices", "service_tier",
                          "system_fingerprint", "usage", "kv_transfer_params",
                          "ec_transfer_params", "metrics"]
    assert body["choices"][0]["text"] == " filler" * 5
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5
    assert body["usage"]["completion_tokens_details"] is None
    default = _complete(spark, prompt="hello world").json()  # max_tokens defaults to 16
    assert default["usage"]["completion_tokens"] == 16
    assert _complete(current, prompt="hi").json()["system_fingerprint"].startswith("vllm-0.32.0-")


def test_completions_generation_prompt_follows_the_script(spark):
    prompt = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    choice = _complete(spark, prompt=prompt, max_tokens=64).json()["choices"][0]
    assert (choice["text"], choice["finish_reason"]) == ("The user asks.</think>\n\n4", "stop")
    off = _complete(spark, prompt=prompt + "\n</think>\n\n", max_tokens=64).json()["choices"][0]
    assert (off["text"], off["finish_reason"]) == ("4", "stop")


def test_completions_stream(current):
    def events(**extra) -> list:
        body = {"model": MODEL, "prompt": "hello", "max_tokens": 3, "stream": True, **extra}
        with current.client.stream("POST", "/v1/completions", json=body) as response:
            return sse_events(response)
    with_usage = events(stream_options={"include_usage": True})
    assert with_usage[-1] == "[DONE]"
    usage_chunk = with_usage[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == {
        "prompt_tokens": 1, "total_tokens": 4, "completion_tokens": 3}
    assert usage_chunk["system_fingerprint"].startswith("vllm-0.32.0-")
    without = events()
    assert without[-2]["choices"][0]["finish_reason"] == "length"
    assert without[-2]["system_fingerprint"] == usage_chunk["system_fingerprint"]
    assert "".join(e["choices"][0]["text"] for e in without[:-1]) == " filler" * 3


# --- context length ---------------------------------------------------------------------
def test_context_errors_0_20_to_0_31(spark):
    """vLLM 0.28.0 (the pinned release) answers 400 when prompt + an explicit max_tokens is over
    the limit (wheel vllm/renderers/params.py); it does not clamp as 0.32 does."""
    sum_over = chat(spark, messages=long_messages(spark, MAX_LEN - 3), max_tokens=1000)
    assert sum_over.status_code == 400
    message = sum_over.json()["error"]["message"]
    assert message.startswith(f"This model's maximum context length is {MAX_LEN} tokens. However, you requested "
                              f"1000 output tokens and your prompt contains {MAX_LEN - 3} input tokens")


def test_context_errors_since_0_32(current):
    spark = current
    over = chat(spark, messages=long_messages(spark, MAX_LEN + 1))
    assert over.status_code == 400
    assert over.json() == {"error": {
        "message": f"This model's maximum context length is {MAX_LEN} tokens. However, your "
                   f"prompt contains at least {MAX_LEN + 1} input tokens, which exceeds this "
                   "limit even without any output tokens. Please reduce the length of the input "
                   f"prompt. (parameter=input_tokens, value={MAX_LEN + 1})",
        "type": "BadRequestError", "param": "input_tokens", "code": 400}}
    too_many = chat(spark, max_tokens=5000)
    assert too_many.status_code == 400
    assert too_many.json()["error"]["message"] == (
        "max_tokens=5000 cannot be greater than max_model_len=4096. Please request fewer "
        "output tokens. (parameter=max_tokens, value=5000)")
    clamped = chat(spark, messages=long_messages(spark, MAX_LEN - 3), max_tokens=1000)
    assert clamped.status_code == 200
    assert clamped.json()["choices"][0]["finish_reason"] == "length"
    assert clamped.json()["usage"]["completion_tokens"] == 3


def test_context_errors_before_0_20(old):
    over = chat(old, messages=long_messages(old, 101))
    assert over.status_code == 400
    assert over.json()["error"]["message"] == (
        "This model's maximum context length is 100 tokens. However, your request has 101 "
        "input tokens. Please reduce the length of the input messages.")
    sum_over = chat(old, messages=long_messages(old, 90), max_tokens=20)
    assert sum_over.status_code == 400
    assert sum_over.json()["error"] == {
        "message": "'max_tokens' or 'max_completion_tokens' is too large: 20. This model's "
                   "maximum context length is 100 tokens and your request has 90 input tokens "
                   "(20 > 100 - 90).",
        "type": "BadRequestError", "param": "max_tokens", "code": 400}


# --- model, auth, tools -----------------------------------------------------------------
def test_unknown_model_404(spark):
    response = chat(spark, model="foo")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["message"] == "The model `foo` does not exist."  # 0.28: no alias list
    assert (error["type"], error["code"]) == ("NotFoundError", 404)


def test_unknown_model_404_lists_aliases_since_0_32(current):
    error = chat(current, model="foo").json()["error"]
    assert error["message"] == f"The model `foo` does not exist. Valid aliases: {MODEL}."


def test_api_key(keyed):
    assert keyed.client.get("/v1/models").status_code == 401
    assert keyed.client.get("/v1/models").json() == {"error": "Unauthorized"}
    assert chat(keyed).status_code == 401
    ok = keyed.client.get("/v1/models", headers={"Authorization": "Bearer sekret"})
    assert ok.status_code == 200
    for path in ("/health", "/version", "/metrics"):
        assert keyed.client.get(path).status_code == 200
    assert keyed.client.post("/tokenize", json={"prompt": "hi"}).status_code == 200


def test_api_key_from_env(start):
    server = start([MODEL], VLLM_API_KEY="envkey")
    assert server.client.get("/v1/models").status_code == 401
    assert server.client.get("/v1/models", headers={"Authorization": "Bearer envkey"}).status_code == 200


def test_tool_call(spark):
    body = chat(spark, tools=TOOLS, tool_choice="auto").json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "stand-in"}


def test_auto_tool_choice_without_flag_400(keyed):
    response = chat(keyed, headers={"Authorization": "Bearer sekret"}, tools=TOOLS,
                    tool_choice="auto")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set')


# --- metrics ----------------------------------------------------------------------------
def _metric(server: Server, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families
    total = 0.0
    for family in text_string_to_metric_families(server.client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name:
                assert sample.labels["engine"] == "0" and sample.labels["model_name"] == MODEL
                total += sample.value
    return total


def test_metrics_and_spec_decode_grow(spark):
    before = {n: _metric(spark, n) for n in (
        "vllm:spec_decode_num_drafts_total", "vllm:spec_decode_num_draft_tokens_total",
        "vllm:spec_decode_num_accepted_tokens_total", "vllm:generation_tokens_total",
        "vllm:prompt_tokens_total", "vllm:time_to_first_token_seconds_count")}
    chat(spark, max_tokens=400, ignore_eos=True)  # ignore_eos: 400 tokens, not 8
    after = {n: _metric(spark, n) for n in before}
    assert all(after[n] > before[n] for n in before)
    drafted = after["vllm:spec_decode_num_draft_tokens_total"] - before["vllm:spec_decode_num_draft_tokens_total"]
    accepted = after["vllm:spec_decode_num_accepted_tokens_total"] - before["vllm:spec_decode_num_accepted_tokens_total"]
    assert 0.75 < accepted / drafted < 0.95
    assert _metric(spark, "vllm:spec_decode_num_accepted_tokens_per_pos_total") > 0
    text = spark.client.get("/metrics").text
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting",
                 "vllm:kv_cache_usage_perc", "vllm:prefix_cache_queries_total",
                 "vllm:prefix_cache_hits_total", "vllm:inter_token_latency_seconds_bucket",
                 "vllm:e2e_request_latency_seconds_sum"):
        assert name in text
    assert "not a GPU measurement" in text


def test_prefix_cache_hits_on_repeat(spark):
    messages = long_messages(spark, 200)
    chat(spark, messages=messages, max_tokens=1)
    hits = _metric(spark, "vllm:prefix_cache_hits_total")
    chat(spark, messages=messages, max_tokens=1)
    assert _metric(spark, "vllm:prefix_cache_hits_total") >= hits + 192


# --- latency ----------------------------------------------------------------------------
def test_small_responses_are_not_delayed(spark):
    """No ~40 ms Nagle/delayed-ACK stall per response: headers and body written separately
    did that to every response with a body, and to /health after one on the same keep-alive
    connection. uvicorn (real vLLM) answers these in ~1 ms. Median of 20 each, interleaved."""
    paths = ["/health", "/version", "/v1/models"]
    times: dict[str, list[float]] = {path: [] for path in paths}
    spark.client.get("/health")  # open the connection
    for _ in range(20):
        for path in paths:
            began = time.perf_counter()
            assert spark.client.get(path).status_code == 200
            times[path].append(time.perf_counter() - began)
    medians = {path: statistics.median(t) for path, t in times.items()}
    assert all(m < 0.020 for m in medians.values()), {p: f"{m * 1000:.1f} ms" for p, m in medians.items()}


# --- memory model and faults ------------------------------------------------------------
def test_spark_without_chunked_prefill_kills_engine(start):
    server = start([MODEL, "--max-model-len", str(MAX_LEN), "--no-enable-chunked-prefill"],
                   VLLM_STANDIN_GPU="NVIDIA GB10,[N/A],12.1",
                   VLLM_STANDIN_SPARK_PREFILL_LIMIT="500")
    assert chat(server, messages=long_messages(server, 400)).status_code == 200
    dead = chat(server, messages=long_messages(server, 600))
    assert dead.status_code == 500
    assert dead.json() == {"error": {
        "message": "EngineCore encountered an issue. See stack trace (above) for the root cause.",
        "type": "InternalServerError", "param": None, "code": 500}}
    assert server.client.get("/health").status_code == 503
    assert chat(server).status_code == 500
    assert "CUDA out of memory" in server.output()


def test_chunked_prefill_on_spark_survives_long_prompt(start):
    server = start([MODEL, "--max-model-len", str(MAX_LEN)],
                   VLLM_STANDIN_GPU="NVIDIA GB10,[N/A],12.1",
                   VLLM_STANDIN_SPARK_PREFILL_LIMIT="500")
    assert chat(server, messages=long_messages(server, 600)).status_code == 200
    assert server.client.get("/health").status_code == 200


def test_fault_engine_dead(start):
    server = start([MODEL], VLLM_STANDIN_FAULT="engine_dead")
    assert server.client.get("/health").status_code == 200  # health lies, as real vLLM did
    response = chat(server)
    assert response.status_code == 500
    assert "EngineCore encountered an issue" in response.json()["error"]["message"]


def test_fault_health_503(start):
    server = start([MODEL], VLLM_STANDIN_FAULT="health_503")
    assert server.client.get("/health").status_code == 503


def test_fault_exit_after(start):
    server = start([MODEL], VLLM_STANDIN_FAULT="exit_after:0.5")
    assert server.proc.wait(timeout=5) == 1
    assert "Engine core proc died unexpectedly" in server.output()


@pytest.mark.parametrize(("signum", "health_after"), [(signal.SIGUSR1, 503), (signal.SIGUSR2, 200)])
def test_engine_killed_by_signal_under_a_live_server(start, signum, health_after):
    server = start([MODEL])
    assert chat(server).status_code == 200
    server.proc.send_signal(signum)
    deadline = time.monotonic() + 5
    while chat(server).status_code == 200:
        assert time.monotonic() < deadline, "the engine still answered 5 s after the signal"
        time.sleep(0.05)
    assert chat(server).json()["error"]["type"] == "InternalServerError"
    assert server.client.get("/health").status_code == health_after
    assert server.proc.poll() is None  # the API server lives on: only a watchdog can notice
    assert "Engine core proc died unexpectedly" in server.output()
