"""Render a resolved serving configuration into `vllm serve` arguments.

This is the only code that turns profile fields into vLLM flags: the instance manifest and the
role's .args file (through the collection's filter plugin), lint's version rules and the smoke
suite all call it.
"""

from __future__ import annotations

import json
from typing import Any

from vllm_fleet.serving.addresses import CONTAINER_PORT

# serving field -> flag, for fields rendered as "--flag VALUE" when not null.
VALUE_FLAGS: tuple[tuple[str, str], ...] = (
    ("tensor_parallel_size", "--tensor-parallel-size"),
    ("max_model_len", "--max-model-len"),
    ("kv_cache_dtype", "--kv-cache-dtype"),
    ("gpu_memory_utilization", "--gpu-memory-utilization"),
    ("max_num_seqs", "--max-num-seqs"),
    ("max_num_batched_tokens", "--max-num-batched-tokens"),
    ("attention_backend", "--attention-backend"),
    ("moe_backend", "--moe-backend"),
    ("quantization", "--quantization"),
    ("reasoning_parser", "--reasoning-parser"),
    ("tool_call_parser", "--tool-call-parser"),
)
# serving field -> (flag when true, flag when false); None means "leave vLLM's default".
BOOL_FLAGS: tuple[tuple[str, str | None, str | None], ...] = (
    ("enable_chunked_prefill", "--enable-chunked-prefill", "--no-enable-chunked-prefill"),
    ("enable_prefix_caching", "--enable-prefix-caching", "--no-enable-prefix-caching"),
    ("enable_auto_tool_choice", "--enable-auto-tool-choice", None),
    ("trust_remote_code", "--trust-remote-code", None),
    ("async_scheduling", "--async-scheduling", None),
)
JSON_FLAGS: tuple[tuple[str, str], ...] = (
    ("speculative_config", "--speculative-config"),
    ("default_chat_template_kwargs", "--default-chat-template-kwargs"),
)


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def serve_args(serving_config: dict[str, Any], port: int = CONTAINER_PORT) -> list[str]:
    """Arguments after `vllm serve`: the model id first, then flags in a stable order.

    `serving_config` is what `vllm_fleet.profiles.resolve_serving` returns.
    """
    model = serving_config["model"]
    serving = serving_config["serving"]
    args = [model["id"], "--served-model-name", model["id"]]
    if model.get("revision") and model["revision"] != "main":
        args += ["--revision", str(model["revision"])]
    args += ["--host", "0.0.0.0", "--port", str(port)]
    for field, flag in VALUE_FLAGS:
        if serving.get(field) is not None:
            args += [flag, _scalar(serving[field])]
    for field, on_flag, off_flag in BOOL_FLAGS:
        value = serving.get(field)
        if value is True and on_flag:
            args.append(on_flag)
        elif value is False and off_flag:
            args.append(off_flag)
    for field, flag in JSON_FLAGS:
        if serving.get(field):
            args += [flag, json.dumps(serving[field], separators=(",", ":"), sort_keys=True)]
    args += [str(a) for a in serving.get("extra_args") or []]
    return args


def served_model_name(serving_config: dict[str, Any]) -> str:
    """The name clients must request: vLLM's parser keeps the last --served-model-name, and
    extra_args may name the model again after the one the renderer writes."""
    args = serve_args(serving_config)
    last = len(args) - 1 - args[::-1].index("--served-model-name")
    return args[last + 1]


def flags_of(args: list[str]) -> list[str]:
    """The option names in an argument list (`--flag` or `--flag=value` -> `--flag`)."""
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def serve_env(serving_config: dict[str, Any]) -> dict[str, str]:
    """Environment variables of the profile, as strings, for the unit's env file."""
    return {str(k): str(v) for k, v in sorted((serving_config.get("env") or {}).items())}
