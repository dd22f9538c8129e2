"""`vllm serve` argument parsing, emulated with argparse.

Two kinds of failure, as in vLLM:
- argparse errors (unknown flag, bad choice, bad JSON) exit 2 with `vllm: error: ...`
  (`vllm serve: error: ...` for errors raised by the serve sub-parser, as argparse does);
- startup validation errors (tool parser, reasoning parser, scheduler limits) raise an
  exception after parsing; vLLM lets those escape as a traceback, so the process exits 1.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from vllm_standin.version import Version, emulated_version, has

KV_CACHE_DTYPES = ["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]
MOE_BACKENDS = ["auto", "triton", "cutlass", "flashinfer_trtllm", "flashinfer_cutlass",
                "flashinfer_cutedsl", "marlin"]
DTYPES = ["auto", "half", "float16", "bfloat16", "float", "float32"]
# GUESS: vLLM takes an AttentionBackendEnum name; this is a generous subset, matched
# case-insensitively (NVIDIA's Spark playbook passes lower-case `flashinfer`).
ATTENTION_BACKENDS = ["flash_attn", "flashinfer", "triton_attn", "flex_attention", "torch_sdpa",
                      "cpu_attn", "rocm_attn", "rocm_aiter_fa", "flashmla", "flashinfer_mla",
                      "cutlass_mla", "triton_mla", "flash_attn_mla"]
# A subset of vLLM's registered quantization methods (facts §Quantization flag for modelopt_*).
QUANTIZATIONS = ["awq", "awq_marlin", "compressed-tensors", "experts_int8",
                 "fbgemm_fp8", "fp8", "gptq", "gptq_marlin", "modelopt",
                 "modelopt_fp4", "modelopt_mxfp8", "mxfp4", "torchao"]
# Tool parsers registered in vLLM (subset; facts §Flags and env vars: there is no `qwen3`).
TOOL_PARSERS = ["deepseek_v3", "deepseek_v31", "ernie45", "glm45", "granite", "granite-20b-fc",
                "hermes", "hunyuan_a13b", "internlm", "jamba", "kimi_k2", "llama3_json",
                "llama4_json", "llama4_pythonic", "minimax_m2", "mistral", "olmo3",
                "openai", "phi4_mini_json", "pythonic", "qwen3_coder", "qwen3_json", "qwen3_xml",
                "seed_oss", "step3", "xlam"]
# Tool parsers newer than the oldest emulated release (wheel vllm/tool_parsers/__init__.py):
# qwen3_json is registered from 0.32.0 only.
TOOL_PARSERS_SINCE = {"qwen3_json": "qwen3_json_tool_parser"}


def tool_parsers(version: Version) -> list[str]:
    return [p for p in TOOL_PARSERS if p not in TOOL_PARSERS_SINCE or has(version, TOOL_PARSERS_SINCE[p])]
REASONING_PARSERS = ["deepseek_r1", "deepseek_v3", "ernie45", "glm45", "granite",
                     "hunyuan_a13b", "minimax_m2", "mistral", "olmo3", "openai_gptoss", "qwen3",
                     "seed_oss", "step3"]
# Parsers whose output format the stand-in's scripted model follows (<think>...</think>).
THINK_TAG_PARSERS = {"qwen3", "deepseek_r1"}


class StartupError(Exception):
    """A validation error vLLM raises after argument parsing (process exits 1)."""

    def __init__(self, exc_type: str, message: str):
        super().__init__(message)
        self.exc_type = exc_type
        self.message = message


def _json_object(flag: str):
    """argparse `type=` for JSON-valued flags; vLLM parses them with json.loads."""

    def parse(value: str) -> dict:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            # GUESS: exact wording of vLLM's JSON error; exit code 2 follows argparse.
            raise argparse.ArgumentTypeError(f"invalid JSON for {flag}: {exc}") from None
        if not isinstance(parsed, dict):
            raise argparse.ArgumentTypeError(f"{flag} must be a JSON object, got {value!r}")
        return parsed

    return parse


def _lower_choice(choices: list[str]):
    def parse(value: str) -> str:
        lowered = value.lower()
        if lowered not in choices:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {value!r} (choose from {', '.join(map(repr, choices))})")
        return lowered

    return parse


def build_parser(version: Version) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="vllm", description="vLLM CLI (STAND-IN test double)")
    top.add_argument("-v", "--version", action="store_true", help="print the emulated version")
    subcommands = top.add_subparsers(dest="subcommand")
    serve = subcommands.add_parser(
        "serve", usage="vllm serve [model_tag] [options]",
        help="Launch a (stand-in) OpenAI-compatible API server")
    serve.add_argument("model_tag", nargs="?", help="model name or path")
    serve.add_argument("--model", dest="model_flag")
    serve.add_argument("--served-model-name", nargs="+")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key")
    serve.add_argument("--revision")
    serve.add_argument("--tokenizer")
    serve.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    serve.add_argument("--pipeline-parallel-size", "-pp", type=int, default=1)
    serve.add_argument("--max-model-len", type=int)
    serve.add_argument("--kv-cache-dtype", choices=KV_CACHE_DTYPES, default="auto")
    serve.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    serve.add_argument("--max-num-seqs", type=int)
    serve.add_argument("--max-num-batched-tokens", type=int)
    serve.add_argument("--enable-chunked-prefill", action=argparse.BooleanOptionalAction)
    serve.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction)
    serve.add_argument("--speculative-config", type=_json_object("--speculative-config"))
    serve.add_argument("--reasoning-parser")
    serve.add_argument("--tool-call-parser")
    serve.add_argument("--enable-auto-tool-choice", action="store_true")
    serve.add_argument("--quantization", "-q", choices=QUANTIZATIONS
                       + (["modelopt_mixed"] if has(version, "modelopt_mixed") else []))
    serve.add_argument("--trust-remote-code", action=argparse.BooleanOptionalAction)
    serve.add_argument("--async-scheduling", action=argparse.BooleanOptionalAction)
    serve.add_argument("--load-format", default="auto")
    serve.add_argument("--download-dir")
    serve.add_argument("--dtype", choices=DTYPES, default="auto")
    serve.add_argument("--enforce-eager", action=argparse.BooleanOptionalAction)
    serve.add_argument("--chat-template")
    serve.add_argument("--uvicorn-log-level", default="info")
    serve.add_argument("--disable-log-requests", action="store_true")
    serve.add_argument("--disable-log-stats", action="store_true")
    # Flags that newer vLLM added: absent flags make argparse report them as unrecognized,
    # exactly what an older vLLM does with a newer profile.
    if has(version, "attention_backend_flag"):
        serve.add_argument("--attention-backend", type=_lower_choice(ATTENTION_BACKENDS))
    if has(version, "default_chat_template_kwargs"):
        serve.add_argument("--default-chat-template-kwargs",
                           type=_json_object("--default-chat-template-kwargs"))
    if has(version, "moe_backend_flag"):
        serve.add_argument("--moe-backend", choices=MOE_BACKENDS)
    return top


def _normalize(argv: list[str]) -> list[str]:
    """vLLM's FlexibleArgumentParser accepts `--max_model_len` for `--max-model-len`."""
    out = []
    for arg in argv:
        if arg.startswith("--") and len(arg) > 2:
            key, sep, value = arg.partition("=")
            arg = key.replace("_", "-") + sep + value
        out.append(arg)
    return out


@dataclass
class ServeConfig:
    """The parsed `vllm serve` configuration with vLLM's defaults filled in."""

    model: str
    served_model_names: list[str]
    host: str | None
    port: int
    api_key: str | None
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    enable_chunked_prefill: bool
    enable_prefix_caching: bool
    num_speculative_tokens: int
    reasoning_parser: str | None
    tool_call_parser: str | None
    enable_auto_tool_choice: bool
    default_chat_template_kwargs: dict
    args: argparse.Namespace


# GUESS: the real default max-model-len comes from the model's config.json; the stand-in has
# no model, so it uses Qwen3.6's native context (262144).
DEFAULT_MAX_MODEL_LEN = 262144
# vLLM's default batch budget for the API server with chunked prefill (usage context
# OPENAI_API_SERVER); GUESS: the real default depends on the GPU, the stand-in always uses 8192.
DEFAULT_MAX_NUM_BATCHED_TOKENS = 8192
DEFAULT_MAX_NUM_SEQS = 256


def parse_serve_args(argv: list[str], version: Version) -> argparse.Namespace:
    """Parse `vllm ...` arguments; argparse exits 2 on errors, as vLLM does."""
    return build_parser(version).parse_args(_normalize(argv))


def resolve(args: argparse.Namespace, env: dict[str, str]) -> ServeConfig:
    """Validate like vLLM's startup checks and fill defaults; raises StartupError."""
    model = args.model_flag or args.model_tag
    if not model:
        model = "Qwen/Qwen3-0.6B"  # GUESS: vLLM's default model when none is given
    if args.enable_auto_tool_choice and not args.tool_call_parser:
        # vLLM: validate_parsed_serve_args raises TypeError (uncaught -> exit 1).
        raise StartupError("TypeError", "Error: --enable-auto-tool-choice requires --tool-call-parser")
    known = tool_parsers(emulated_version(env)[1])
    if args.enable_auto_tool_choice and args.tool_call_parser not in known:
        # vLLM's api_server check; the KeyError escapes, so the process exits 1 (not 2).
        raise StartupError("KeyError", repr(
            f"invalid tool call parser: {args.tool_call_parser} "
            f"(chose from {{ {','.join(known)} }})"))
    if args.reasoning_parser and args.reasoning_parser not in REASONING_PARSERS:
        # vLLM 0.32.0 ReasoningParserManager: the KeyError lists the registered parsers, sorted
        # (the stand-in knows a subset). GUESS: older versions' wording.
        raise StartupError("KeyError", repr(
            f"Reasoning parser '{args.reasoning_parser}' not found. "
            f"Available parsers: {', '.join(sorted(REASONING_PARSERS))}"))
    max_model_len = args.max_model_len or DEFAULT_MAX_MODEL_LEN
    chunked = True if args.enable_chunked_prefill is None else args.enable_chunked_prefill
    batched = args.max_num_batched_tokens
    if batched is None:
        # Without chunked prefill a whole prompt must fit one batch, so vLLM raises the budget.
        batched = DEFAULT_MAX_NUM_BATCHED_TOKENS if chunked else max(max_model_len, 2048)
    elif batched < max_model_len and not chunked:
        # vLLM SchedulerConfig check (wording from memory of vllm/config/scheduler.py).
        raise StartupError("ValueError", (
            f"max_num_batched_tokens ({batched}) is smaller than max_model_len "
            f"({max_model_len}). This effectively limits the maximum sequence length to "
            "max_num_batched_tokens and makes vLLM reject longer sequences. Please increase "
            "max_num_batched_tokens or decrease max_model_len."))
    spec = args.speculative_config or {}
    num_spec = int(spec.get("num_speculative_tokens", 0) or 0) if spec else 0
    if spec and num_spec <= 0:
        raise StartupError("ValueError", "num_speculative_tokens must be provided with "
                           "speculative model or the draft model config")  # GUESS: wording
    template_kwargs = getattr(args, "default_chat_template_kwargs", None) or {}
    return ServeConfig(
        model=model,
        served_model_names=args.served_model_name or [model],
        host=args.host,
        port=args.port,
        api_key=args.api_key or env.get("VLLM_API_KEY") or None,
        max_model_len=max_model_len,
        max_num_seqs=args.max_num_seqs or DEFAULT_MAX_NUM_SEQS,
        max_num_batched_tokens=batched,
        enable_chunked_prefill=chunked,
        enable_prefix_caching=(True if args.enable_prefix_caching is None
                               else args.enable_prefix_caching),
        num_speculative_tokens=num_spec,
        reasoning_parser=args.reasoning_parser,
        tool_call_parser=args.tool_call_parser,
        enable_auto_tool_choice=bool(args.enable_auto_tool_choice),
        default_chat_template_kwargs=template_kwargs,
        args=args,
    )
