"""The semantic rules and preflight's verdicts, on declared and on measured hardware."""

from __future__ import annotations

import pytest

from vllm_fleet.checks import HostView, default_instances, memory_needed_gib, preflight_problems, run_rules
from vllm_fleet.profiles import resolve_serving

H100 = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_total_mib": 81559, "mig_mode": "Disabled"}


def facts(*gpus: dict, driver_branch: int = 580, **extra) -> dict:
    return {"count": len(gpus), "driver_branch": driver_branch, "driver_version": f"{driver_branch}.159.04",
            "gpus": [dict(g, index=i) for i, g in enumerate(gpus)], "mig_enabled": False, **extra}


HOST = {"name": "h1", "cpu_arch": "x86_64", "memtotal_mib": 2_000_000, "margin_gib": 20, "image_size_gib": 25}
PLENTY = 500 * 2**30


def view(profile: str, **kw) -> HostView:
    cfg = resolve_serving(profile, kw.pop("overrides", None))
    base = dict(name="h", cfg=cfg, compute_capability="9.0", gpu_memory_mib=81559, gpu_count=1, cpu_arch="x86_64",
                driver_branch=580, instances=default_instances(cfg["serving"]["tensor_parallel_size"]))
    base.update(kw)
    return HostView(**base)


def rules_of(h: HostView) -> set[str]:
    return {v.rule for v in run_rules(h) if v.severity != "info"}


def test_good_hopper_host_passes_every_rule() -> None:
    assert rules_of(view("hopper")) == set()


def test_preflight_passes_on_the_real_h100_capture() -> None:
    assert preflight_problems(resolve_serving("hopper"), facts(H100), PLENTY, HOST) == []


def test_preflight_refuses_the_seeds_a100_before_download() -> None:
    a100 = {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0", "memory_total_mib": 81920}
    problems = preflight_problems(resolve_serving("hopper"), facts(a100), PLENTY, HOST)
    assert len(problems) == 1
    assert "8.0 is not served by profile 'hopper'" in problems[0]
    assert "'fallback' or 'fallback-nvfp4-marlin'" in problems[0]


def test_preflight_refuses_old_driver_small_disk_and_mig() -> None:
    problems = preflight_problems(resolve_serving("hopper"), facts(dict(H100, mig_mode="Enabled"), driver_branch=535,
                                                                   mig_enabled=True), 30 * 2**30, HOST)
    text = "\n".join(problems)
    assert "driver branch 535 is too old for the image's CUDA 13 (needs >= 580)" in text
    assert "only 30.0 GiB free" in text and "~68 GiB are needed" in text
    assert "MIG mode is enabled" in text


def test_preflight_uses_system_memory_on_unified_memory_spark() -> None:
    gb10 = {"name": "NVIDIA GB10", "compute_capability": "12.1", "memory_total_mib": None}
    spark = dict(HOST, cpu_arch="aarch64")
    ok = facts(gb10, unified_memory=True, system_memory_mib=124_000)
    assert preflight_problems(resolve_serving("spark"), ok, PLENTY, spark) == []
    small = facts(gb10, unified_memory=True, system_memory_mib=16_000)
    assert any("needs ~" in p for p in preflight_problems(resolve_serving("spark"), small, PLENTY, spark))


def test_preflight_counts_gpus_for_tensor_parallel() -> None:
    a100 = {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0", "memory_total_mib": 81920}
    problems = preflight_problems(resolve_serving("fallback"), facts(a100), PLENTY, HOST)
    assert any("uses GPU 1 but the host has 1 GPU(s)" in p for p in problems)
    assert preflight_problems(resolve_serving("fallback"), facts(a100, a100), PLENTY, HOST) == []


def test_preflight_with_no_gpu() -> None:
    assert "no GPU" in preflight_problems(resolve_serving("hopper"), facts(), PLENTY, HOST)[0]


def test_memory_estimate_shrinks_with_tensor_parallel() -> None:
    cfg = resolve_serving("fallback")
    single = resolve_serving("fallback", {"serving": {"tensor_parallel_size": 1}})
    assert memory_needed_gib(cfg, 1) < memory_needed_gib(single, 1)


@pytest.mark.parametrize("profile,kw,rule", [
    ("hopper", {"compute_capability": "8.0"}, "VF101"),
    ("fallback", {"cpu_arch": "aarch64", "gpu_count": 2, "compute_capability": "8.0"}, "VF102"),
    ("hopper", {"driver_branch": 570}, "VF104"),
    ("hopper", {"gpu_memory_mib": 24000}, "VF105"),
    ("spark", {"compute_capability": "12.1", "cpu_arch": "aarch64", "gpu_memory_mib": 122880,
               "overrides": {"serving": {"enable_chunked_prefill": None}}}, "VF202"),
    ("hopper", {"bind_address": "10.0.0.5"}, "VF402"),
    ("hopper", {"overrides": {"serving": {"extra_args": ["--bogus-flag"]}}}, "VF305"),
])
def test_rule_fires(profile: str, kw: dict, rule: str) -> None:
    assert rule in rules_of(view(profile, **kw))


def test_lab_standin_relaxes_only_the_cpu_rule() -> None:
    h = view("spark", compute_capability="12.1", gpu_memory_mib=122880, cpu_arch="x86_64", lab_standin=True)
    found = {v.rule: v.severity for v in run_rules(h)}
    assert found.get("VF102") == "info"
    assert "VF103" not in found  # the multi-arch image has amd64 too


def test_api_key_on_ipv6_loopback_not_needed() -> None:
    assert "VF402" not in rules_of(view("hopper", bind_address="::1"))


def _real_h100_facts() -> dict:
    import json
    from pathlib import Path

    text = (Path(__file__).parents[1] / "fixtures" / "preflight-h100-real" / "module-nvidia_gpu_facts.txt").read_text()
    return json.loads(text[text.index("{"):])["ansible_facts"]["vllm_fleet_gpu_facts"]


def test_real_h100_capture_through_the_module_and_the_rules() -> None:
    """Facts captured by the module on a real H100: hopper fits, the disk of that machine did not."""
    real = _real_h100_facts()
    assert real["gpus"][0]["compute_capability"] == "9.0" and real["driver_branch"] == 580
    free_on_that_machine = 68663685120  # df -PB1 there
    problems = preflight_problems(resolve_serving("hopper"), real, free_on_that_machine, HOST)
    assert len(problems) == 1 and "only 63.9 GiB free" in problems[0]
    assert preflight_problems(resolve_serving("hopper"), real, free_on_that_machine, dict(HOST, margin_gib=10)) == []
    assert any("not served by profile 'spark'" in p for p in preflight_problems(resolve_serving("spark"), real, PLENTY, HOST))


def test_lab_standin_spark_is_judged_on_declared_memory() -> None:
    gb10 = {"name": "NVIDIA GB10", "compute_capability": "12.1", "memory_total_mib": None}
    lab_vm = facts(gb10, unified_memory=True, system_memory_mib=24_000)
    host = dict(HOST, cpu_arch="x86_64", declared_memory_mib=122880)
    assert any("needs ~" in p for p in preflight_problems(resolve_serving("spark"), lab_vm, PLENTY, host))
    assert preflight_problems(resolve_serving("spark"), lab_vm, PLENTY, dict(host, lab_standin="True")) == []
