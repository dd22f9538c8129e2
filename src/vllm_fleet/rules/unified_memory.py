"""Rules for unified-memory hosts (DGX Spark GB10): the GPU shares the system's memory, as
declared by `vllm_fleet_gpu.unified_memory` and measured by preflight."""

from __future__ import annotations

from typing import Iterator

from vllm_fleet.rules.base import ERROR, INFO, WARNING, Finding, HostView, Rule
from vllm_fleet.serving import profiles, releases

# seed §"The vLLM Serve Commands": the three variables it calls mandatory on DGX Spark.
SPARK_SEED_ENV = ("VLLM_USE_FLASHINFER_MOE_FP4", "VLLM_FP8_MOE_BACKEND", "FLASHINFER_DISABLE_VERSION_CHECK")
# seed: "cap --max-model-len at 65536 on DGX Spark to stay within safe VRAM margins at 0.85".
SPARK_MAX_MODEL_LEN = 65536
# Above this share of unified memory, vLLM's start-time check that the OS reports
# utilization x total as free (vllm 0.28.0: utils/mem_utils.py, v1/worker/utils.py) competes with
# the OS, its page cache and other processes. NVIDIA's playbook uses 0.4, vLLM's recipe 0.5.
UNIFIED_UTILIZATION_SAFE = 0.5


def _is_spark(h: HostView) -> bool:
    return h.unified_memory


def check_spark_env(h: HostView) -> Iterator[Finding]:
    if not _is_spark(h):
        return
    env_table = releases.releases()["env"]
    version = str(h.cfg["image"].get("vllm_version") or "0")
    # Only variables the pinned vLLM still reads are required: the seed's "set all three" predates
    # their removal from vLLM (vllm 0.25.0: envs.py), and FLASHINFER_DISABLE_VERSION_CHECK, which
    # FlashInfer reads, is not set by NVIDIA's own DGX Spark playbook with vLLM's image.
    for var in SPARK_SEED_ENV:
        spec = env_table.get(var)
        read = spec is not None and spec.get("reader") in (None, "vllm") and releases.available_in(spec, version)
        if read and var not in (h.cfg.get("env") or {}):
            yield (f"vllm_fleet_overrides.env.{var}",
                   f"DGX Spark needs {var} set with vLLM {version} (seed: FlashInfer MoE kernel mismatch at startup "
                   f"without it); add it to the profile's env")


def check_spark_chunked_prefill(h: HostView) -> Iterator[Finding]:
    if _is_spark(h) and h.cfg["serving"].get("enable_chunked_prefill") is not True:
        yield ("vllm_fleet_overrides.serving.enable_chunked_prefill",
               "DGX Spark needs chunked prefill: without it long prompts OOM well before max_model_len; "
               "set enable_chunked_prefill: true")


def _from_profile(h: HostView, field: str) -> bool:
    """Whether a serving value is the profile's own (a documented choice, not an override)."""
    return profiles.catalogue()["profiles"][h.cfg["name"]]["serving"].get(field) == h.cfg["serving"].get(field)


def check_spark_context(h: HostView) -> Iterator[Finding]:
    """The seed caps Spark at 65536 tokens *at 0.85 utilization*; NVIDIA's playbook serves 262144
    at 0.4. What is risky is the pair, so the warning names the trade instead of forbidding it."""
    serving = h.cfg["serving"]
    utilization = float(serving["gpu_memory_utilization"])
    if _is_spark(h) and int(serving["max_model_len"]) > SPARK_MAX_MODEL_LEN and utilization > UNIFIED_UTILIZATION_SAFE:
        yield ("vllm_fleet_overrides.serving.max_model_len",
               f"max_model_len {serving['max_model_len']} at gpu_memory_utilization {utilization} on unified memory: "
               f"the seed caps DGX Spark at {SPARK_MAX_MODEL_LEN} at 0.85, NVIDIA's playbook serves 262144 at 0.4. "
               f"Choose one: lower max_model_len to {SPARK_MAX_MODEL_LEN}, or utilization to 0.4-0.5 "
               f"(profile spark-nvidia)")


def check_unified_utilization(h: HostView) -> Iterator[Finding]:
    utilization = float(h.cfg["serving"]["gpu_memory_utilization"])
    if _is_spark(h) and utilization > UNIFIED_UTILIZATION_SAFE:
        # The seed's 0.85 stays in its profile on purpose: a note there, a warning when an
        # override raises it.
        severity = INFO if _from_profile(h, "gpu_memory_utilization") else WARNING
        yield ("vllm_fleet_overrides.serving.gpu_memory_utilization",
               f"gpu_memory_utilization {utilization} of unified memory: vLLM refuses to start when the OS reports "
               f"less than that share free (the OS, its page cache and other processes share it; run with "
               f"vllm_drop_caches_before_start). NVIDIA's playbook uses 0.4 and vLLM's recipe 0.5", severity)


RULES: tuple[Rule, ...] = (
    Rule("VF201", ERROR, "DGX Spark env vars that the pinned vLLM reads", check_spark_env),
    Rule("VF202", ERROR, "DGX Spark chunked prefill", check_spark_chunked_prefill),
    Rule("VF203", WARNING, "DGX Spark context length against utilization", check_spark_context),
    Rule("VF204", WARNING, "unified-memory utilization vLLM can start with", check_unified_utilization),
)
