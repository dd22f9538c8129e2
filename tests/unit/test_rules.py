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
            "vllm_fleet_cpu_arch": "aarch64" if profile == "spark" else "x86_64", "vllm_fleet_driver_branch": 580,
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
