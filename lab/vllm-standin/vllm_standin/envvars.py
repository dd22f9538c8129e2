"""vLLM's environment variables: which ones the emulated version knows.

vLLM only *logs* unknown `VLLM_*` variables ("Unknown vLLM environment variable detected: X");
it does not fail. A profile that sets a variable vLLM dropped is therefore silently ineffective,
which is why the stand-in reproduces the warning faithfully.
"""

from __future__ import annotations

from vllm_standin.version import Version

# Known in every emulated version (a subset of vllm/envs.py; enough for our deployments).
ALWAYS_KNOWN = {
    "VLLM_API_KEY", "VLLM_LOGGING_LEVEL", "VLLM_LOGGING_PREFIX", "VLLM_CONFIGURE_LOGGING",
    "VLLM_LOGGING_CONFIG_PATH", "VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND",
    "VLLM_TARGET_DEVICE", "VLLM_HOST_IP", "VLLM_PORT", "VLLM_USE_MODELSCOPE", "VLLM_CACHE_ROOT",
    "VLLM_CONFIG_ROOT", "VLLM_NO_USAGE_STATS", "VLLM_DO_NOT_TRACK", "VLLM_USAGE_SOURCE",
    "VLLM_WORKER_MULTIPROC_METHOD", "VLLM_ALLOW_LONG_MAX_MODEL_LEN", "VLLM_RPC_TIMEOUT",
    "VLLM_ENGINE_ITERATION_TIMEOUT_S", "VLLM_KEEP_ALIVE_ON_ENGINE_DEATH", "VLLM_SERVER_DEV_MODE",
    "VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "VLLM_LOG_STATS_INTERVAL", "VLLM_NCCL_SO_PATH",
    "VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_USE_FLASHINFER_SAMPLER", "VLLM_ALLOW_RUNTIME_LORA_UPDATING",
    "VLLM_DEBUG_LOG_API_SERVER_RESPONSE", "VLLM_MARLIN_USE_ATOMIC_ADD", "VLLM_USE_DEEP_GEMM",
    "VLLM_USE_TRITON_FLASH_ATTN", "VLLM_TORCH_PROFILER_DIR", "VLLM_TRACE_FUNCTION",
}

# name -> (first version that knows it, first version that no longer knows it); None = open.
# facts §Flags and env vars: VLLM_ATTENTION_BACKEND in 0.12.0, gone by 0.15.1;
# VLLM_USE_FLASHINFER_MOE_FP4 / VLLM_FLASHINFER_MOE_BACKEND through 0.20.0, gone by 0.25.0.
# GUESS: the exact removal releases between those checked wheels are unknown; the stand-in
# drops them at the first checked version that lacks them. VLLM_USE_FLASHINFER_MOE_FP8 is
# assumed to have gone with its FP4 sibling (unverified). VLLM_FP8_MOE_BACKEND never existed.
VERSIONED: dict[str, tuple[Version | None, Version | None]] = {
    "VLLM_ATTENTION_BACKEND": (None, (0, 15, 1)),
    "VLLM_USE_FLASHINFER_MOE_FP4": (None, (0, 25, 0)),
    "VLLM_FLASHINFER_MOE_BACKEND": (None, (0, 25, 0)),
    "VLLM_USE_FLASHINFER_MOE_FP8": (None, (0, 25, 0)),
}

# The stand-in's own knobs: a real vLLM image never sees them, so they must not warn.
STANDIN_PREFIX = "VLLM_STANDIN_"


def is_known(name: str, version: Version) -> bool:
    if name in ALWAYS_KNOWN:
        return True
    if name in VERSIONED:
        since, gone = VERSIONED[name]
        return (since is None or version >= since) and (gone is None or version < gone)
    return False


def unknown_vllm_vars(environ: dict[str, str], version: Version) -> list[str]:
    return sorted(
        name for name in environ
        if name.startswith("VLLM_") and not name.startswith(STANDIN_PREFIX)
        and not is_known(name, version))
