"""Options and fixtures of the post-deploy smoke suite (run it with `vllm-fleet smoke`).

The suite talks to one live OpenAI-compatible vLLM endpoint (`--url`) and, when `--host` is
given, inspects the host behind it with testinfra. Without `--url` every test skips, so a plain
`pytest` run of the repository does not need a server.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from vllm_fleet.serving import releases
from vllm_fleet.smoke.options import SUITE_DEFAULTS, SUITE_OPTIONS
from vllm_fleet.smoke.parsers import describe_response as describe

# Words with no shared prefixes, so any BPE tokenizer splits them about the same way each time
# they repeat: the token count then grows linearly with the repetitions and calibration converges.
FILLER_UNIT = "The quick brown fox jumps over the lazy dog near seven quiet rivers. "


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vllm-smoke", "vLLM post-deploy smoke checks")
    for name, options in SUITE_OPTIONS:
        # "--host" is stored as smoke_host: testinfra's plugin owns the `host` name.
        extra = {"dest": "smoke_host"} if name == "--host" else {}
        group.addoption(name, default=SUITE_DEFAULTS.get(name), **options, **extra)
    # Not a SUITE_OPTIONS entry (no `vllm-fleet smoke` flag): the command sets it so that the
    # host-side checks' skip reason names the flag the user actually has (--host-checks).
    group.addoption("--host-checks-hint", default=None,
                    help="skip reason for the host-side checks when --host is not given")

@dataclass
class Settings:
    """What the suite expects of the server, from the command line."""

    url: str
    model: str | None
    max_model_len: int | None
    vllm_version: str | None
    api_key: str | None
    expect_tools: bool
    expect_spec_decode: bool
    long_prompt_ratio: float
    timeout: float
    host: str | None
    unit: str
    container: str
    image_digest: str | None
    expected_args: list[str] | None = field(default=None)
    # How to verify an https URL (a CA bundle or the server's own certificate); None: system CAs.
    ca_file: str | None = None
    # Where /metrics is read: vLLM itself when a proxy in front keeps /metrics to itself.
    metrics_url: str | None = None
    host_hint: str | None = None
    # The URL is the authenticating proxy (every path keyed), not vLLM itself.
    expect_proxy: bool = False


def _opt(config: pytest.Config, name: str, default: Any = None) -> Any:
    # getoption with a default: the options exist only when this conftest was loaded early
    # (the suite directory was named on the command line), not in a plain repository run.
    return config.getoption(name, default=default)


def _read_api_key(path: str | None) -> str | None:
    if not path:
        return None
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise pytest.UsageError(f"cannot read the API key file {path}: {exc.strerror}") from None
    if not key:
        raise pytest.UsageError(f"the API key file {path} is empty; write the key into it")
    return key


def _read_expected_args(path: str | None) -> list[str] | None:
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise pytest.UsageError(f"cannot read {path} as a JSON list of arguments: {exc}") from None
    if not isinstance(data, list):
        raise pytest.UsageError(f"{path} must hold a JSON list of `vllm serve` arguments")
    return [str(a) for a in data]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _opt(config, "url"):
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="the smoke suite needs --url (run it with `vllm-fleet smoke`)")
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def settings(pytestconfig: pytest.Config) -> Settings:
    url = _opt(pytestconfig, "url")
    if not url:
        pytest.skip("the smoke suite needs --url")
    return Settings(
        url=url.rstrip("/"),
        model=_opt(pytestconfig, "model"),
        max_model_len=_opt(pytestconfig, "max_model_len"),
        vllm_version=_opt(pytestconfig, "vllm_version"),
        api_key=_read_api_key(_opt(pytestconfig, "api_key_file")),
        expect_tools=bool(_opt(pytestconfig, "expect_tools", False)),
        expect_spec_decode=bool(_opt(pytestconfig, "expect_spec_decode", False)),
        long_prompt_ratio=float(_opt(pytestconfig, "long_prompt_ratio", 0.9)),
        timeout=float(_opt(pytestconfig, "timeout", 120.0)),
        host=_opt(pytestconfig, "smoke_host"),
        unit=_opt(pytestconfig, "unit", "vllm@main.service"),
        container=_opt(pytestconfig, "container", "vllm-main"),
        image_digest=_opt(pytestconfig, "image_digest"),
        expected_args=_read_expected_args(_opt(pytestconfig, "expected_args_file")),
        host_hint=_opt(pytestconfig, "host_checks_hint"),
        ca_file=_opt(pytestconfig, "ca_file"),
        metrics_url=(_opt(pytestconfig, "metrics_url") or url).rstrip("/"),
        expect_proxy=bool(_opt(pytestconfig, "expect_proxy", False)),
    )


class Api:
    """The server's HTTP API as the checks use it; every request carries the API key."""

    def __init__(self, settings: Settings, client: httpx.Client):
        self.s = settings
        self.client = client

    # --- plain endpoints -----------------------------------------------------------
    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def metrics(self) -> httpx.Response:
        """/metrics of vLLM itself (at --metrics-url, which is --url unless a proxy is in front)."""
        return self.client.get(f"{self.s.metrics_url}/metrics")

    def health(self) -> int:
        return self.client.get("/health").status_code

    def served_model(self) -> str:
        """The model id requests name: the expected one, else whatever the server serves."""
        if self.s.model:
            return self.s.model
        data = self.client.get("/v1/models").json().get("data") or [{}]
        return str(data[0].get("id"))

    def version(self) -> str | None:
        """The version to judge version-dependent behaviour by: expected first, else served."""
        if self.s.vllm_version:
            return self.s.vllm_version
        resp = self.client.get("/version")
        return resp.json().get("version") if resp.status_code == 200 else None

    def max_model_len(self) -> int:
        """The limit the server enforces: its own /v1/models figure, else the expected one.

        The context checks test the server's enforcement and prefill at its real limit; a
        mismatch with the expected value is test_models' finding, not theirs.
        """
        resp = self.client.get("/v1/models")
        data = (resp.json().get("data") or [{}]) if resp.status_code == 200 else [{}]
        value = data[0].get("max_model_len") or self.s.max_model_len
        if not value:
            pytest.fail("neither the server's /v1/models nor --max-model-len gives max_model_len")
        return int(value)

    def reasoning_field(self) -> str:
        version = self.version()
        # Without any version the current field name is the better guess.
        return releases.reasoning_field(version) if version else "reasoning"

    # --- chat ----------------------------------------------------------------------
    def chat_body(self, messages: list[dict], **extra: Any) -> dict:
        return {"model": self.served_model(), "messages": messages, **extra}

    def chat(self, messages: list[dict], **extra: Any) -> httpx.Response:
        return self.client.post("/v1/chat/completions", json=self.chat_body(messages, **extra))

    def chat_ok(self, messages: list[dict], **extra: Any) -> dict:
        resp = self.chat(messages, **extra)
        assert resp.status_code == 200, f"a chat completion failed with {describe(resp)}"
        return resp.json()

    def chat_stream(self, messages: list[dict], **extra: Any) -> Iterator[dict]:
        """The stream's JSON chunks; an error event inside the stream fails the check."""
        body = self.chat_body(messages, stream=True, stream_options={"include_usage": True}, **extra)
        with self.client.stream("POST", "/v1/chat/completions", json=body) as resp:
            if resp.status_code != 200:
                resp.read()
                pytest.fail(f"a streaming chat completion failed with {describe(resp)}")
            for line in resp.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                chunk = json.loads(data)
                if "error" in chunk:
                    pytest.fail(f"the stream carried an error: {chunk['error'].get('message', chunk['error'])}")
                yield chunk

    # --- prompt calibration --------------------------------------------------------
    def count_tokens(self, messages: list[dict], **template: Any) -> int:
        """Tokens of the chat-templated prompt, counted by the server's own tokenizer."""
        body = {"model": self.served_model(), "messages": messages, "add_generation_prompt": True}
        if template:
            body["chat_template_kwargs"] = template
        resp = self.client.post("/tokenize", json=body)
        assert resp.status_code == 200, f"/tokenize failed with {describe(resp)}; cannot size the prompt"
        return int(resp.json()["count"])

    def prompt_of(self, target: int, ceiling: int | None = None) -> tuple[list[dict], int]:
        """Messages whose templated prompt has >= target tokens (and <= ceiling when given).

        Tokenizers differ, so the filler's cost is measured, not assumed, then corrected.
        """
        def messages(units: int) -> list[dict]:
            return [{"role": "user", "content": FILLER_UNIT * units + "\nReply with one word."}]

        base = self.count_tokens(messages(0), enable_thinking=False)
        probe = 64
        per_unit = max(1e-6, (self.count_tokens(messages(probe), enable_thinking=False) - base) / probe)
        units = max(1, math.ceil((target - base) / per_unit))
        for _ in range(8):
            n = self.count_tokens(messages(units), enable_thinking=False)
            if n < target:
                units += max(1, math.ceil((target - n) / per_unit))
            elif ceiling is not None and n > ceiling:
                units -= max(1, math.ceil((n - ceiling) / per_unit))
            else:
                return messages(units), n
        pytest.fail(f"could not size a prompt between {target} and {ceiling} tokens with /tokenize")


@pytest.fixture(scope="session")
def api(settings: Settings) -> Iterator[Api]:
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    verify: Any = settings.ca_file or True
    with httpx.Client(base_url=settings.url, headers=headers, timeout=settings.timeout, verify=verify) as client:
        try:
            client.get("/health", timeout=min(settings.timeout, 10.0))
        except httpx.TransportError as exc:
            pytest.fail(f"cannot reach {settings.url} ({exc}); is the unit running and the port "
                        "published on an address this machine can reach?")
        yield Api(settings, client)
