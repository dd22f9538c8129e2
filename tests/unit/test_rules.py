"""The serving rules on a host as its inventory declares it (lint's view)."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_fleet.rules import RULES, HostView, run_rules
from vllm_fleet.rules.hardware import memory_needed_gib
from vllm_fleet.serving.host import plan_host
from vllm_fleet.serving.profiles import resolve_serving

GPUS = {
    "hopper": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_mib": 81559, "count": 1},
    "spark": {"name": "NVIDIA GB10", "compute_capability": "12.1", "memory_mib": 122880, "count": 1,
              "unified_memory": True},
    "fallback": {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0", "memory_mib": 81920, "count": 2},
}


def fleet_vars(profile: str, gpu: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"vllm_fleet_profile": profile, "vllm_fleet_gpu": {**GPUS.get(profile, GPUS["hopper"]), **(gpu or {})},
            "vllm_fleet_cpu_arch": "aarch64" if profile.startswith("spark") else "x86_64",
            "vllm_fleet_driver_branch": 580,
            **{f"vllm_fleet_{k}": v for k, v in extra.items()}}


def view(profile: str, gpu: dict[str, Any] | None = None, **extra: Any) -> HostView:
    return HostView.declared("h", plan_host(fleet_vars(profile, gpu, **extra)))


def rules_of(h: HostView) -> set[str]:
    return {v.rule for v in run_rules(h, RULES) if v.severity != "info"}


@pytest.mark.parametrize("profile", sorted(GPUS))
def test_good_hosts_pass_every_rule(profile: str) -> None:
    assert rules_of(view(profile)) == set()


def test_memory_estimate_shrinks_with_tensor_parallel() -> None:
    cfg = resolve_serving("fallback")
    single = resolve_serving("fallback", {"serving": {"tensor_parallel_size": 1}})
    assert memory_needed_gib(cfg, 1) < memory_needed_gib(single, 1)


@pytest.mark.parametrize("profile,gpu,extra,rule", [
    ("hopper", {"compute_capability": "8.0"}, {}, "VF101"),
    ("fallback", {}, {"cpu_arch": "aarch64"}, "VF102"),
    ("hopper", {}, {"driver_branch": 570}, "VF104"),
    ("hopper", {"memory_mib": 24000}, {}, "VF105"),
    ("spark", {}, {"overrides": {"serving": {"enable_chunked_prefill": None}}}, "VF202"),
    ("hopper", {}, {"bind_address": "10.0.0.5"}, "VF402"),
    ("hopper", {}, {"overrides": {"serving": {"extra_args": ["--bogus-flag"]}}}, "VF305"),
    ("hopper", {}, {"instances": [{"name": "a", "gpus": [0], "port": 8000}, {"name": "a", "gpus": [0], "port": 8001}]},
     "VF401"),
    # The blackwell profile as it was (MTP 2, no draft MoE backend, marlin): crashed at start.
    ("blackwell", {"name": "NVIDIA B200", "compute_capability": "10.0", "memory_mib": 183359},
     {"overrides": {"serving": {"speculative_config": {"method": "mtp", "num_speculative_tokens": 2, "moe_backend": None}}}},
     "VF309"),
    ("hopper", {}, {"overrides": {"serving": {"enable_chunked_prefill": False}}}, "VF310"),
    ("hopper", {}, {"overrides": {"serving": {"speculative_config": {"method": "mtpp", "num_speculative_tokens": 2}}}},
     "VF311"),
    ("hopper", {}, {"overrides": {"serving": {"extra_args": ["--max-model-length", "1024"]}}}, "VF305"),
    ("spark", {}, {"overrides": {"serving": {"max_model_len": 262144}}}, "VF203"),
    ("spark", {}, {"overrides": {"serving": {"gpu_memory_utilization": 0.9}}}, "VF204"),
])
def test_rule_fires(profile: str, gpu: dict, extra: dict, rule: str) -> None:
    assert rule in rules_of(view(profile, gpu, **extra))


def test_duplicate_instance_names_are_named() -> None:
    h = view("hopper", {"count": 2}, instances=[{"name": "a", "gpus": [0], "port": 8000},
                                                 {"name": "a", "gpus": [1], "port": 8001}])
    found = [v for v in run_rules(h, RULES) if v.rule == "VF401"]
    assert [v.var for v in found] == ["vllm_fleet_instances[1].name"]
    assert "both named 'a'" in found[0].message


def test_idle_gpus_of_the_default_instance_warn() -> None:
    """A 2-GPU hopper host without instances serves on GPU 0 only (lint, role and README agree)."""
    h = view("hopper", {"count": 2})
    assert h.instances == [{"name": "main", "gpus": [0], "port": 8000}]
    found = [v for v in run_rules(h, RULES) if v.rule == "VF401"]
    assert [v.severity for v in found] == ["warning"] and "1 stay idle" in found[0].message


def test_a_waiver_turns_a_finding_into_a_note_with_its_reason() -> None:
    h = view("spark", cpu_arch="x86_64", waivers={"VF102": "a lab container stands in for the GB10"})
    found = {v.rule: v for v in run_rules(h, RULES)}
    assert found["VF102"].severity == "info"
    assert "waived by vllm_fleet_waivers: a lab container stands in for the GB10" in found["VF102"].message
    assert rules_of(view("spark", cpu_arch="x86_64")) == {"VF102"}


def test_api_key_on_ipv6_loopback_not_needed() -> None:
    assert "VF402" not in rules_of(view("hopper", bind_address="::1"))
    assert "VF402" in rules_of(view("hopper", bind_address="::"))


def test_unified_memory_rules_follow_the_declaration_not_the_profile_name() -> None:
    """"Is this a Spark" is unified memory, declared (lint) or measured (preflight)."""
    no_chunked = {"serving": {"enable_chunked_prefill": None}}
    assert "VF202" in rules_of(view("spark", overrides=no_chunked))
    assert "VF202" not in rules_of(view("spark", {"unified_memory": False}, overrides=no_chunked))


def test_a_near_miss_of_a_flag_is_an_error_and_an_unknown_flag_a_warning() -> None:
    near = [v for v in run_rules(view("hopper", overrides={"serving": {"extra_args": ["--max-model-length", "1"]}}), RULES)
            if v.rule == "VF305"]
    assert [v.severity for v in near] == ["error"] and "did you mean '--max-model-len'" in near[0].message
    unknown = [v for v in run_rules(view("hopper", overrides={"serving": {"extra_args": ["--data-parallel-size", "2"]}}),
                                    RULES) if v.rule == "VF305"]
    assert [v.severity for v in unknown] == ["warning"]


def test_spark_context_names_the_trade_and_the_vendor_setting_passes() -> None:
    """NVIDIA's playbook serves 262144 at 0.4 on GB10: no warning; the seed's 65536 at 0.85 is a
    note (kept on purpose); 262144 at 0.85 warns with both ways out."""
    assert rules_of(view("spark-nvidia", {**GPUS["spark"]})) == set()
    seed = {v.rule: v.severity for v in run_rules(view("spark"), RULES)}
    assert seed.get("VF204") == "info" and "VF203" not in seed
    both = [v for v in run_rules(view("spark", overrides={"serving": {"max_model_len": 262144}}), RULES)
            if v.rule == "VF203"]
    assert both[0].severity == "warning" and "spark-nvidia" in both[0].message


def test_every_profile_passes_the_start_time_rules() -> None:
    """No profile of the catalogue is one vLLM refuses at start (as far as the rules know)."""
    from vllm_fleet.serving.profiles import profile_names

    gpus = {"hopper-fp8": "hopper", "spark-nvidia": "spark", "blackwell": None, "fallback-nvfp4-marlin": "fallback"}
    for name in profile_names():
        gpu = GPUS.get(gpus.get(name, name) or "", {"name": "NVIDIA B200", "compute_capability": "10.0",
                                                      "memory_mib": 183359, "count": 1})
        if name == "fallback-nvfp4-marlin":
            gpu = {**GPUS["fallback"], "count": 1}
        found = {v.rule for v in run_rules(view(name, gpu), RULES) if v.severity == "error"}
        assert found == set(), (name, found)


def test_an_r570_host_is_pointed_at_the_cuda_12_build() -> None:
    """CUDA 13 needs driver >= 580; the catalogue's CUDA 12.9 build of the same release runs on 570."""
    old = [v for v in run_rules(view("hopper", driver_branch=570), RULES) if v.rule == "VF104"]
    assert "vllm_fleet_overrides: {image: vllm-openai-v0.28.0-cu129}" in old[0].message
    assert "VF104" not in rules_of(view("hopper", driver_branch=570, overrides={"image": "vllm-openai-v0.28.0-cu129"}))
    # ... and that image is not one for an aarch64 host (only its amd64 platform is known).
    assert "VF103" in rules_of(view("hopper", cpu_arch="aarch64", driver_branch=570,
                                    overrides={"image": "vllm-openai-v0.28.0-cu129"}))
