"""Real vLLM 0.32.0 (CPU) serving the scripted tiny Qwen3: what the stand-in and the product's
smoke checks assume about reasoning output, filler/length behaviour and metrics, and the smoke
suite itself (`vllm-fleet smoke`) run against it: green on the right configuration, red on
exactly the checks that name each misconfiguration.

The module reuses the session's real server (--reasoning-parser qwen3, --api-key); the last
tests restart it WITHOUT the reasoning parser (one server at a time). That is the module's only
extra start: a wrong model name or max_model_len is a mismatch between what the server runs
and what the suite is told to expect, so those negatives tell the suite to expect another
value of the one running server instead of paying ~25-40 s for a server started wrongly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.realvllm.support import API_KEY, REPO, TIMINGS, VLLM_VERSION, serve

pytestmark = pytest.mark.realvllm

MODEL = serve.SERVED_NAME
LIMIT = serve.MAX_MODEL_LEN
AUTH = {"Authorization": f"Bearer {API_KEY}"}
USER = [{"role": "user", "content": "What is 2+2?"}]

# The smoke suite's checks (tests/smoke), by what they need of this lab server.
API_CHECKS = {"test_health", "test_models", "test_version", "test_real_completion", "test_reasoning_parsed",
              "test_reasoning_parsed_streaming", "test_thinking_off", "test_api_key_enforced",
              "test_over_limit_prompt", "test_long_prompt"}
# The lab's serve command has no tool parser and no speculative decoding, so the suite is not
# told to expect them (--expect-tools/--expect-spec-decode) and skips those checks.
NOT_EXPECTED = {"test_tool_calling", "test_spec_decode_metrics"}
# No --host: the host-side (testinfra) checks skip.
HOST_CHECKS = {"test_unit_active_enabled", "test_container_runs_pinned_digest_and_args",
               "test_gpus_visible_in_container", "test_no_engine_errors_in_journal"}
SKIPPED = NOT_EXPECTED | HOST_CHECKS
# Every check that sends a request naming the model, so a 404 when that name is wrong.
NAMING_THE_MODEL = {"test_real_completion", "test_reasoning_parsed", "test_reasoning_parsed_streaming",
                    "test_thinking_off", "test_over_limit_prompt", "test_long_prompt"}


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


# --- the smoke suite (`vllm-fleet smoke`) against real vLLM -------------------------------------

@dataclass
class SmokeRun:
    """One `vllm-fleet smoke` run: exit code, printed summary, and per-check results."""

    returncode: int
    stdout: str
    checks: dict[str, dict[str, Any]]  # check name -> its entry of the --json document
    junit: dict[str, str]  # check name -> outcome, from the --junit XML

    def outcomes(self, outcome: str) -> set[str]:
        return {name for name, check in self.checks.items() if check["outcome"] == outcome}

    def message(self, check: str) -> str:
        return str(self.checks[check]["message"])

    def assert_failed_exactly(self, failed: set[str]) -> None:
        """`failed` failed, every other check the server can pass passed, the rest skipped."""
        assert self.returncode == (1 if failed else 0), self.stdout
        assert set(self.checks) == API_CHECKS | SKIPPED, self.stdout
        assert self.outcomes("failed") | self.outcomes("error") == failed, self.stdout
        assert self.outcomes("passed") == API_CHECKS - failed, self.stdout
        assert self.outcomes("skipped") == SKIPPED, self.stdout
        # The JUnit report (what CI shows) says the same as the JSON document.
        assert self.junit == {name: check["outcome"] for name, check in self.checks.items()}


def _junit_outcomes(path: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        outcome = ("failed" if "failure" in kinds else "error" if "error" in kinds
                   else "skipped" if "skipped" in kinds else "passed")
        out[case.get("name", "")] = outcome
    return out


def run_smoke(url: str, tmp_path: Path, label: str, *, model: str = MODEL,
              max_model_len: int = LIMIT, extra: tuple[str, ...] = ()) -> SmokeRun:
    """`vllm-fleet smoke` against `url`, told to expect `model` and `max_model_len`.

    A subprocess: the command runs pytest in-process, which must not nest in this session.
    """
    key_file = tmp_path / "api-key"
    key_file.write_text(API_KEY + "\n")
    json_path, junit_path = tmp_path / "smoke.json", tmp_path / "smoke.xml"
    argv = ["smoke", "--url", url, "--model", model, "--max-model-len", str(max_model_len),
            "--vllm-version", VLLM_VERSION, "--api-key-file", str(key_file),
            "--json", str(json_path), "--junit", str(junit_path), *extra]
    code = "import sys; from vllm_fleet.cli import main; sys.exit(main(sys.argv[1:]))"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    TIMINGS[f"smoke suite ({label})"] = time.monotonic() - start
    assert json_path.is_file(), f"no JSON written; exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    doc = json.loads(json_path.read_text())
    return SmokeRun(returncode=proc.returncode, stdout=proc.stdout,
                    checks={c["check"]: c for c in doc["checks"]}, junit=_junit_outcomes(junit_path))


def test_smoke_suite_passes_on_the_right_configuration(url: str, tmp_path: Path) -> None:
    run = run_smoke(url, tmp_path, "right configuration")
    run.assert_failed_exactly(set())
    assert "all checks passed" in run.stdout
    # The context checks ran at the real limit: just over it (rejected) and ~90 % of it (served).
    assert LIMIT < run.checks["test_over_limit_prompt"]["properties"]["prompt_tokens"] <= LIMIT + 64
    assert 0.9 * LIMIT <= run.checks["test_long_prompt"]["properties"]["prompt_tokens"] <= LIMIT
    # vLLM on loopback with its own --api-key: what it leaves open is reported, not failed.
    assert run.checks["test_api_key_enforced"]["properties"]["open_without_key"] == (
        "POST /invocations (200), POST /tokenize (200), POST /detokenize (200)")


def test_smoke_suite_expecting_the_proxy_names_what_vllm_leaves_open(url: str, tmp_path: Path) -> None:
    # Why the role puts a proxy in front of every exposed instance: real vLLM's --api-key guards
    # /v1 but answers /invocations, /tokenize and /detokenize without the key (issue #58144).
    run = run_smoke(url, tmp_path, "expecting the proxy", extra=("--expect-proxy",))
    run.assert_failed_exactly({"test_api_key_enforced"})
    text = run.message("test_api_key_enforced")
    assert "POST /invocations (200), POST /tokenize (200), POST /detokenize (200)" in text, text
    assert "/v1/" not in text, text


def test_smoke_suite_fails_on_a_wrong_model_name(url: str, tmp_path: Path) -> None:
    # The server serves --served-model-name nvidia/Qwen3.6-35B-A3B-NVFP4; the configuration says
    # the checkpoint's hub id, a plausible slip. test_models reports the mismatch, and every
    # check that names the model in a request gets real vLLM's 404 for it; nothing else fails.
    expected = "Qwen/Qwen3.6-35B-A3B"
    run = run_smoke(url, tmp_path, "wrong model name", model=expected)
    run.assert_failed_exactly({"test_models"} | NAMING_THE_MODEL)
    assert f"the server serves [{MODEL!r}] but {expected!r} was expected" in run.message("test_models")
    for check in NAMING_THE_MODEL:
        assert "HTTP 404" in run.message(check), (check, run.message(check))
        assert f"The model `{expected}` does not exist" in run.message(check), (check, run.message(check))
    assert "SMOKE FAILED" in run.stdout


def test_smoke_suite_fails_on_a_wrong_max_model_len(url: str, tmp_path: Path) -> None:
    # The server runs --max-model-len 4096; the configuration says 8192. test_models is the
    # check about the configured value. The context checks test what the server enforces, at
    # its own limit (tests/smoke/conftest.py Api.max_model_len), so they pass: a 4096-token
    # limit is still enforced and served correctly, and blaming them would hide the cause.
    expected = 2 * LIMIT
    run = run_smoke(url, tmp_path, "wrong max_model_len", max_model_len=expected)
    run.assert_failed_exactly({"test_models"})
    assert f"max_model_len is {LIMIT}, expected {expected}" in run.message("test_models")
    # Sized from the server's 4096, not the expected 8192 (that would be over 7000 tokens).
    assert LIMIT < run.checks["test_over_limit_prompt"]["properties"]["prompt_tokens"] <= LIMIT + 64
    assert 0.9 * LIMIT <= run.checks["test_long_prompt"]["properties"]["prompt_tokens"] <= LIMIT


# The last two tests share a server started WITHOUT the reasoning parser; they stay last so
# the default server above is started once.

def test_without_reasoning_parser_think_leaks_into_content(real_vllm: Any) -> None:
    server = real_vllm.get(api_key=API_KEY, reasoning_parser=False)
    r = post(server.url, "/v1/chat/completions", {"messages": USER})
    message = r.json()["choices"][0]["message"]
    assert message["content"] == "The user asks.</think>\n\n4"
    assert message.get("reasoning") is None


def test_smoke_suite_fails_without_reasoning_parser(real_vllm: Any, tmp_path: Path) -> None:
    # The server of the previous test (same options: no restart). Only the two reasoning checks
    # fail, for the tags in content; thinking off needs no parser and passes.
    server = real_vllm.get(api_key=API_KEY, reasoning_parser=False)
    run = run_smoke(server.url, tmp_path, "no reasoning parser")
    run.assert_failed_exactly({"test_reasoning_parsed", "test_reasoning_parsed_streaming"})
    assert run.message("test_reasoning_parsed").startswith("</think> leaked into content")
    assert run.message("test_reasoning_parsed_streaming").startswith("</think> leaked into streamed content")
