"""Small parsers the smoke suite and `vllm-fleet bench` share, tested once outside a live
server: error bodies, Prometheus counters, the stand-in's marker, journal lines, container args."""

from __future__ import annotations

import json
from typing import Any

SPEC_ACCEPTED = "vllm:spec_decode_num_accepted_tokens_total"
SPEC_DRAFTED = "vllm:spec_decode_num_draft_tokens_total"
STANDIN_MARKER = "STAND-IN"
# Journal lines that mean the engine failed. Plain "EngineCore" is not enough: vLLM prefixes
# every log line of its engine process with "(EngineCore_DP0 pid=N)", errors or not.
ENGINE_ERROR_PATTERNS = ("EngineCore encountered", "EngineCore failed", "Engine core proc",
                         "Traceback (most recent call last)", "CUDA out of memory", "OutOfMemoryError")


def describe_response(resp: Any) -> str:
    """`HTTP 500: <the server's error message>`, for messages a user reads."""
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}: {resp.text[:200]!r}"
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return f"HTTP {resp.status_code}: {err.get('message')}"
    if err:
        return f"HTTP {resp.status_code}: {err}"
    return f"HTTP {resp.status_code}: {json.dumps(body)[:200]}"


def counter_samples(metrics_text: str) -> dict[str, float]:
    """Prometheus text -> {sample name: value summed over label sets}."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + float(sample.value)
    return totals


def spec_counters(metrics_text: str) -> tuple[float, float] | None:
    """(accepted, draft) speculative-decoding token counters, or None when the server has none."""
    totals = counter_samples(metrics_text)
    if SPEC_DRAFTED not in totals:
        return None
    return totals.get(SPEC_ACCEPTED, 0.0), totals[SPEC_DRAFTED]


def is_standin_metrics(metrics_text: str) -> bool:
    """The lab's vLLM stand-in starts its /metrics with a comment naming itself."""
    head = metrics_text[:300]
    return head.startswith("#") and STANDIN_MARKER in head


def engine_error_lines(lines: list[str]) -> list[str]:
    """Journal lines that show an engine failure (see ENGINE_ERROR_PATTERNS)."""
    return [line for line in lines
            if any(p in line for p in ENGINE_ERROR_PATTERNS)
            or ("EngineCore" in line and " ERROR " in f" {line} ")]


def image_digest_matches(image_ref: str, repo_digests: list[str], digest: str) -> bool:
    """Whether a container's image reference or its image's RepoDigests carry `digest`."""
    return image_ref.endswith("@" + digest) or any(d.endswith("@" + digest) for d in repo_digests)


def args_difference(expected: list[str], actual: list[str]) -> str | None:
    """None when `expected` appears, in order and contiguous, in the container's command line.

    Otherwise a sentence naming the flags that are missing or unexpected.
    """
    n = len(expected)
    if any(actual[i:i + n] == expected for i in range(len(actual) - n + 1)):
        return None
    exp_flags = {a.split("=", 1)[0] for a in expected if a.startswith("--")}
    act_flags = {a.split("=", 1)[0] for a in actual if a.startswith("--")}
    missing, extra = sorted(exp_flags - act_flags), sorted(act_flags - exp_flags)
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected {', '.join(extra)}")
    if not parts:
        parts.append("same flags but other values or order")
    return "; ".join(parts) + f" (runs: {' '.join(actual)[:300]})"
