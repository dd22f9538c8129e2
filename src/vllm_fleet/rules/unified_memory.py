"""Rules for unified-memory hosts (DGX Spark GB10): the GPU shares the system's memory, as
declared by `vllm_fleet_gpu.unified_memory` and measured by preflight."""

from __future__ import annotations

from typing import Iterator

from vllm_fleet.rules.base import ERROR, Finding, HostView, Rule
from vllm_fleet.serving import releases

# seed §"The vLLM Serve Commands": the three variables it calls mandatory on DGX Spark.
SPARK_SEED_ENV = ("VLLM_USE_FLASHINFER_MOE_FP4", "VLLM_FP8_MOE_BACKEND", "FLASHINFER_DISABLE_VERSION_CHECK")
# seed §"Pushing Further": cap --max-model-len at 65536 on Spark at 0.85 utilization.
SPARK_MAX_MODEL_LEN = 65536


def _is_spark(h: HostView) -> bool:
    return h.unified_memory


def check_spark_env(h: HostView) -> Iterator[Finding]:
    if not _is_spark(h):
        return
    env_table = releases.releases()["env"]
    version = str(h.cfg["image"].get("vllm_version") or "0")
    # Only the variables something in the pinned image still reads are required: the seed's
    # claim that all three are mandatory predates their removal (facts §"Flags and env vars").
    for var in SPARK_SEED_ENV:
        spec = env_table.get(var)
        read = spec is not None and (spec.get("reader") not in (None, "vllm") or releases.available_in(spec, version))
        if read and var not in (h.cfg.get("env") or {}):
            yield (f"vllm_fleet_overrides.env.{var}",
                   f"DGX Spark needs {var} set (seed: FlashInfer MoE kernel mismatch at startup without it); "
                   f"add it to the profile's env")


def check_spark_chunked_prefill(h: HostView) -> Iterator[Finding]:
    if _is_spark(h) and h.cfg["serving"].get("enable_chunked_prefill") is not True:
        yield ("vllm_fleet_overrides.serving.enable_chunked_prefill",
               "DGX Spark needs chunked prefill: without it long prompts OOM well before max_model_len; "
               "set enable_chunked_prefill: true")


def check_spark_context(h: HostView) -> Iterator[Finding]:
    serving = h.cfg["serving"]
    if _is_spark(h) and int(serving["max_model_len"]) > SPARK_MAX_MODEL_LEN:
        yield ("vllm_fleet_overrides.serving.max_model_len",
               f"max_model_len {serving['max_model_len']} is above {SPARK_MAX_MODEL_LEN}, the safe cap on DGX Spark "
               f"at {serving['gpu_memory_utilization']} utilization; lower it to {SPARK_MAX_MODEL_LEN}")


RULES: tuple[Rule, ...] = (
    Rule("VF201", ERROR, "DGX Spark env vars that the pinned vLLM reads", check_spark_env),
    Rule("VF202", ERROR, "DGX Spark chunked prefill", check_spark_chunked_prefill),
    Rule("VF203", ERROR, "DGX Spark max_model_len cap", check_spark_context),
)
