"""Preflight's verdicts: the declared host against measured nvidia-smi facts (fixtures captured on
real GPUs), then the hardware rules again on what was measured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vllm_fleet.rules.preflight import preflight_problems
from vllm_fleet.serving.host import plan_host

FIXTURES = Path(__file__).parents[1] / "fixtures"
H100 = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_total_mib": 81559, "mig_mode": "Disabled"}
H200 = {"name": "NVIDIA H200", "compute_capability": "9.0", "memory_total_mib": 143771, "mig_mode": "Disabled"}
A100 = {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0", "memory_total_mib": 81920}
GB10 = {"name": "NVIDIA GB10", "compute_capability": "12.1", "memory_total_mib": None}
HOST = {"name": "h1", "memtotal_mib": 2_000_000, "margin_gib": 20, "image_size_gib": 25}
PLENTY = 500 * 2**30


def facts(*gpus: dict, driver_branch: int = 580, **extra: Any) -> dict:
    return {"count": len(gpus), "driver_branch": driver_branch, "driver_version": f"{driver_branch}.159.04",
            "gpus": [dict(g, index=i) for i, g in enumerate(gpus)], "mig_enabled": False, **extra}


def plan(profile: str = "hopper", gpu: dict[str, Any] | None = None, **extra: Any):
    declared = {"name": H100["name"], "compute_capability": "9.0", "memory_mib": 81559, "count": 1}
    return plan_host({"vllm_fleet_profile": profile, "vllm_fleet_gpu": {**declared, **(gpu or {})},
                      # A Spark is aarch64 (what its group says); the rest here are x86_64 machines.
                      "vllm_fleet_cpu_arch": "aarch64" if profile == "spark" else "x86_64",
                      "vllm_fleet_driver_branch": 580,
                      **{f"vllm_fleet_{k}": v for k, v in extra.items()}})


def rules(problems: list[str]) -> list[str]:
    return [p.split(":", 1)[0] for p in problems]


def test_a_true_declaration_passes() -> None:
    assert preflight_problems(plan(), facts(H100), PLENTY, HOST) == []


def test_the_issue_case_two_h100_declared_on_one_h200_is_refused_naming_both_values() -> None:
    """Seen on a real H200: 2x H100 declared, 1x H200 measured, and preflight passed."""
    declared = plan(gpu={"count": 2}, instances=[{"name": "gpu0", "gpus": [0], "port": 8000},
                                                 {"name": "gpu1", "gpus": [1], "port": 8001}])
    problems = preflight_problems(declared, facts(H200), PLENTY, HOST)
    text = "\n".join(problems)
    assert "VF111" in rules(problems) and "'NVIDIA H100 80GB HBM3' but nvidia-smi reports 'NVIDIA H200'" in text
    assert "VF112" in rules(problems) and "declares 2 GPU(s) but nvidia-smi reports 1" in text
    assert "VF113" in rules(problems) and "81559 MiB" in text and "143771 MiB" in text


def test_one_gpu_declared_on_two_is_refused() -> None:
    assert rules(preflight_problems(plan(gpu={"name": "NVIDIA H200", "memory_mib": 143771}),
                                    facts(H200, H200), PLENTY, HOST)) == ["VF112"]


def test_memory_within_tolerance_passes() -> None:
    # "80 GB" written as 81920 MiB against the 81559 MiB an H100 reports: 0.4% apart.
    assert preflight_problems(plan(gpu={"memory_mib": 81920}), facts(H100), PLENTY, HOST) == []
    assert rules(preflight_problems(plan(gpu={"memory_mib": 90000}), facts(H100), PLENTY, HOST)) == ["VF113"]


def test_compute_capability_mig_driver_and_unified_memory_are_compared() -> None:
    assert "VF114" in rules(preflight_problems(plan(), facts(dict(H100, compute_capability="8.9")), PLENTY, HOST))
    assert "VF115" in rules(preflight_problems(plan(), facts(H100, mig_enabled=True), PLENTY, HOST))
    assert "VF116" in rules(preflight_problems(plan(), facts(H100, driver_branch=570), PLENTY,
                                               dict(HOST, check_driver_branch=True)))
    # Before the cuda stage the loaded branch may differ: the cuda role installs the declared one.
    assert "VF116" not in rules(preflight_problems(plan(), facts(H100, driver_branch=570), PLENTY,
                                                   dict(HOST, check_driver_branch=False)))
    assert "VF117" in rules(preflight_problems(plan(gpu={"unified_memory": True}), facts(H100), PLENTY, HOST))


def test_preflight_refuses_the_seeds_a100_before_download() -> None:
    problems = preflight_problems(plan(gpu={"name": A100["name"], "compute_capability": "8.0", "memory_mib": 81920}),
                                  facts(A100), PLENTY, HOST)
    assert rules(problems) == ["VF101"]
    assert "8.0 is not served by profile 'hopper'" in problems[0]
    assert "'fallback' or 'fallback-nvfp4-marlin'" in problems[0]


def test_preflight_refuses_old_driver_and_small_disk() -> None:
    problems = preflight_problems(plan(driver_branch=535), facts(H100, driver_branch=535), 30 * 2**30, HOST)
    text = "\n".join(problems)
    assert "driver branch 535 is too old for the image's CUDA 13 (needs >= 580)" in text
    assert "only 30.0 GiB free" in text and "~68 GiB are needed" in text


def test_unified_memory_is_judged_on_system_memory() -> None:
    spark = plan("spark", {"name": "NVIDIA GB10", "compute_capability": "12.1", "memory_mib": 122880,
                           "unified_memory": True})
    assert preflight_problems(spark, facts(GB10, unified_memory=True, system_memory_mib=124_000), PLENTY, HOST) == []
    small = preflight_problems(spark, facts(GB10, unified_memory=True, system_memory_mib=16_000), PLENTY, HOST)
    assert "VF113" in rules(small) and "VF105" in rules(small)


def test_a_waiver_lets_a_stand_in_through_with_its_reason() -> None:
    """The lab's GB10 stand-in runs in a VM with 24 GB: it waives the memory comparison."""
    gpu = {"name": "NVIDIA GB10", "compute_capability": "12.1", "memory_mib": 122880, "unified_memory": True}
    lab = facts(GB10, unified_memory=True, system_memory_mib=24_000)
    assert "VF113" in rules(preflight_problems(plan("spark", gpu), lab, PLENTY, HOST))
    waived = plan("spark", gpu, waivers={"VF113": "lab stand-in"}, overrides={"model": {"weights_gib": 1}})
    assert preflight_problems(waived, lab, PLENTY, HOST) == []


def test_preflight_counts_gpus_for_tensor_parallel() -> None:
    a100s = {"name": A100["name"], "compute_capability": "8.0", "memory_mib": 81920, "count": 2}
    problems = preflight_problems(plan("fallback", a100s), facts(A100), PLENTY, HOST)
    assert "VF112" in rules(problems) and any("uses GPU 1 but the host has 1 GPU(s)" in p for p in problems)
    assert preflight_problems(plan("fallback", a100s), facts(A100, A100), PLENTY, HOST) == []


def test_preflight_with_no_gpu() -> None:
    assert "no GPU" in preflight_problems(plan(), facts(), PLENTY, HOST)[0]


def _real_h100_facts() -> dict:
    text = (FIXTURES / "preflight-h100-real" / "module-nvidia_gpu_facts.txt").read_text()
    return json.loads(text[text.index("{"):])["ansible_facts"]["vllm_fleet_gpu_facts"]


def test_real_h100_capture_through_the_module_and_the_rules() -> None:
    """Facts captured by the module on a real H100: hopper fits, the disk of that machine did not."""
    real = _real_h100_facts()
    free_on_that_machine = 68663685120  # df -PB1 there
    problems = preflight_problems(plan(), real, free_on_that_machine, HOST)
    assert len(problems) == 1 and "only 63.9 GiB free" in problems[0]
    assert preflight_problems(plan(), real, free_on_that_machine, dict(HOST, margin_gib=10)) == []
    assert "VF101" in rules(preflight_problems(plan("spark", {"compute_capability": "12.1"}), real, PLENTY, HOST))


def test_the_machines_cpu_architecture_is_judged_not_the_groups() -> None:
    """A Spark group says aarch64; an x86_64 machine in it is refused (VF102) at preflight, and an
    aarch64 machine in a hopper group with an amd64-only image is refused for the image (VF103)."""
    gb10 = plan("spark", gpu={"name": GB10["name"], "compute_capability": "12.1", "memory_mib": 122880,
                              "unified_memory": True})
    spark_facts = facts(GB10, unified_memory=True, system_memory_mib=125_000)
    assert preflight_problems(gb10, spark_facts, PLENTY, {**HOST, "architecture": "aarch64"}) == []
    problems = preflight_problems(gb10, spark_facts, PLENTY, {**HOST, "architecture": "x86_64"})
    assert rules(problems) == ["VF102"] and "CPU architecture x86_64" in problems[0]
    amd64_only = plan(cpu_arch="x86_64", overrides={"image": {"platforms": ["linux/amd64"]}})
    assert preflight_problems(amd64_only, facts(H100), PLENTY, {**HOST, "architecture": "x86_64"}) == []
    assert rules(preflight_problems(amd64_only, facts(H100), PLENTY, {**HOST, "architecture": "aarch64"})) == ["VF103"]
