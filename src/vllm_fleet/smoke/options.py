"""The smoke suite's options, declared once: the suite's conftest gives them to pytest and
`vllm-fleet smoke` to argparse, which passes them on."""

from __future__ import annotations

from typing import Any

SUITE_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--url", {"help": "base URL of the server, e.g. http://gpu1:8000 (with -i: overrides the inventory's)"}),
    ("--model", {"help": "model id the server must serve"}),
    ("--max-model-len", {"type": int, "help": "max_model_len the server must report"}),
    ("--vllm-version", {"help": "vLLM version the server must report (/version)"}),
    ("--api-key-file", {"help": "file holding the API key (sent as a Bearer token)"}),
    ("--ca-file", {"help": "CA bundle (or the server's self-signed certificate) to verify an https URL with"}),
    ("--metrics-url", {"help": "base URL to read /metrics from (default --url; the backend behind a proxy)"}),
    ("--expect-tools", {"action": "store_true", "help": "check tool calling (the server has auto tool choice)"}),
    ("--expect-spec-decode", {"action": "store_true", "help": "check speculative-decoding metrics"}),
    ("--expect-proxy", {"action": "store_true",
                        "help": "the URL is the authenticating proxy: every path needs the key, not only those vLLM guards"}),
    ("--long-prompt-ratio", {"type": float, "help": "long-prompt check length as a fraction of max_model_len (default 0.9)"}),
    ("--timeout", {"type": float, "help": "seconds per request (default 120)"}),
    ("--host", {"help": "testinfra host for host-side checks, e.g. local:// or ssh://root@addr"}),
    ("--unit", {"help": "systemd unit of the instance (default vllm@main.service)"}),
    ("--container", {"help": "docker container of the instance (default vllm-main)"}),
    ("--image-digest", {"help": "sha256:... digest the container must run"}),
    ("--expected-args-file", {"help": "JSON list of the `vllm serve` args the container must have"}),
)
SUITE_DEFAULTS: dict[str, Any] = {"--long-prompt-ratio": 0.9, "--timeout": 120.0,
                                  "--unit": "vllm@main.service", "--container": "vllm-main"}
