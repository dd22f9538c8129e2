"""The vLLM version being emulated (env VLLM_STANDIN_VERSION) and version comparisons.

Behaviour that changed between vLLM releases is gated on this version; the "since" versions are
the first release whose PyPI wheel has the feature (tests/fixtures/vllm-wheel-facts, read by
tools/vllm_wheel_facts.py), or the release it was observed on where marked GUESS.
"""

from __future__ import annotations

import os
import re

DEFAULT_VERSION = "0.28.0"

Version = tuple[int, int, int]


def parse_version(text: str) -> Version:
    """'0.28.0' -> (0, 28, 0); suffixes such as 'rc1' or '.post1' are ignored."""
    match = re.match(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        raise ValueError(f"VLLM_STANDIN_VERSION={text!r} is not a version like 0.28.0")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def emulated_version(environ: dict[str, str] | None = None) -> tuple[str, Version]:
    env = os.environ if environ is None else environ
    text = env.get("VLLM_STANDIN_VERSION") or DEFAULT_VERSION
    return text.strip().lstrip("v"), parse_version(text)


# Feature gates: name -> first version that has it.
SINCE: dict[str, Version] = {
    "attention_backend_flag": (0, 13, 0),        # wheel vllm/engine/arg_utils.py
    "default_chat_template_kwargs": (0, 14, 0),  # wheel vllm/entrypoints/openai/cli_args.py
    "moe_backend_flag": (0, 17, 0),              # wheel vllm/engine/arg_utils.py
    "modelopt_mixed": (0, 17, 0),                # wheel quantization/__init__.py
    "reasoning_field": (0, 11, 1),               # vllm PR #27752: `reasoning` appears
    "reasoning_content_removed": (0, 16, 0),     # vllm PR #33402: only `reasoning`
    # Prompt + an explicit max_tokens over the limit: a 400 from the renderer from here (wheel
    # vllm/renderers/params.py) until 0.32.0, which clamps instead.
    "renderer_context_check": (0, 20, 0),
    "clamp_max_tokens": (0, 32, 0),
    "qwen3_json_tool_parser": (0, 32, 0),        # wheel vllm/tool_parsers/__init__.py
    # GUESS: lab-notes saw "Valid aliases: ..." on 0.32.0; older source said only
    # "does not exist.". When the suffix arrived is unknown; gate on the observed version.
    "model_not_found_aliases": (0, 32, 0),
    # GUESS: real 0.32.0 stamps `system_fingerprint` ("vllm-<version>-<hash8>", vllm PR #40537,
    # merged 2026-04) on responses; the first release with it is unknown, so gate on 0.32.0.
    # Older versions send null (and, in streams, no system_fingerprint key at all).
    "system_fingerprint": (0, 32, 0),
    # GUESS: 0.32.0's ChatMessage serializer drops `tool_calls` when empty (older pydantic
    # models sent []); first release with it unknown, gated on the observed version.
    "empty_tool_calls_omitted": (0, 32, 0),
}


def has(version: Version, feature: str) -> bool:
    return version >= SINCE[feature]
