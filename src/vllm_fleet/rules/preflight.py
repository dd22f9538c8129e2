"""Preflight: the declared host against what nvidia-smi measures, and the serving rules again on
the measured hardware, before anything is downloaded. Each comparison has a rule id, so a host
can waive one with a reason (vllm_fleet_waivers) like any lint rule."""

from __future__ import annotations

from typing import Any, Iterator

from vllm_fleet.rules import exposure, hardware
from vllm_fleet.rules.base import ERROR, Finding, HostView, Rule, run_rules
from vllm_fleet.serving.host import HostPlan

# Declared memory may differ from nvidia-smi's figure by this much: inventories often round
# ("80 GB" = 81920 MiB against the 81559 MiB an H100 80GB HBM3 reports).
MEMORY_TOLERANCE = 0.03

# The serving rules that depend on hardware, run again on the measured view (VF102/VF103 on the
# CPU architecture the host reports: a group says aarch64 for a Spark, the machine decides).
HARDWARE_RULES: tuple[Rule, ...] = tuple(
    r for r in hardware.RULES + exposure.RULES if r.id in ("VF101", "VF102", "VF103", "VF104", "VF105", "VF401"))


def _measured(plan: HostPlan, facts: dict[str, Any], host: dict[str, Any]) -> dict[str, Any]:
    gpus = facts.get("gpus") or []
    first = gpus[0] if gpus else {}
    memory = first.get("memory_total_mib")
    if memory is None and facts.get("unified_memory"):
        # nvidia-smi reports no memory of its own on unified memory: the GPU has the system's.
        memory = facts.get("system_memory_mib") or host.get("memtotal_mib")
    return {
        "names": sorted({str(g.get("name")) for g in gpus}),
        "count": len(gpus),
        "memory_mib": int(memory) if memory else None,
        "compute_capability": str(first.get("compute_capability")) if first else None,
        "mig": bool(facts.get("mig_enabled")),
        "driver_branch": facts.get("driver_branch"),
        "unified_memory": bool(facts.get("unified_memory")),
    }


def _comparisons(plan: HostPlan, m: dict[str, Any], check_driver: bool) -> dict[str, list[Finding]]:
    gpu, found = plan.gpu, {}
    declared_name = gpu.get("name")
    if len(m["names"]) > 1:
        found["VF111"] = [("vllm_fleet_gpu.name", f"the host mixes GPU models ({', '.join(m['names'])}); "
                                                  f"one profile cannot serve them all")]
    elif declared_name and m["names"] and m["names"][0] != declared_name:
        found["VF111"] = [("vllm_fleet_gpu.name", f"the inventory declares {declared_name!r} but nvidia-smi "
                                                  f"reports {m['names'][0]!r}; fix vllm_fleet_gpu or the host's group")]
    if gpu.get("count") is not None and int(gpu["count"]) != m["count"]:
        found["VF112"] = [("vllm_fleet_gpu.count", f"the inventory declares {gpu['count']} GPU(s) but nvidia-smi "
                                                   f"reports {m['count']}; fix vllm_fleet_gpu.count")]
    declared_mib, measured_mib = gpu.get("memory_mib"), m["memory_mib"]
    if declared_mib and measured_mib and abs(int(declared_mib) - measured_mib) > MEMORY_TOLERANCE * measured_mib:
        what = "system memory (unified with the GPU)" if m["unified_memory"] else "memory per GPU"
        found["VF113"] = [("vllm_fleet_gpu.memory_mib",
                           f"the inventory declares {declared_mib} MiB but the host's {what} is {measured_mib} MiB "
                           f"(more than {MEMORY_TOLERANCE:.0%} apart); fix vllm_fleet_gpu.memory_mib")]
    declared_cc = gpu.get("compute_capability")
    if declared_cc and m["compute_capability"] and str(declared_cc) != m["compute_capability"]:
        found["VF114"] = [("vllm_fleet_gpu.compute_capability",
                           f"the inventory declares compute capability {declared_cc} but nvidia-smi reports "
                           f"{m['compute_capability']}; fix vllm_fleet_gpu or move the host to the right group")]
    if m["mig"]:
        found["VF115"] = [("vllm_fleet_gpu", "MIG mode is enabled; disable it (nvidia-smi -mig 0) or use a "
                                             "profile sized for MIG slices")]
    if check_driver and plan.driver_branch is not None and m["driver_branch"] is not None \
            and int(plan.driver_branch) != int(m["driver_branch"]):
        found["VF116"] = [("vllm_fleet_driver_branch",
                           f"the inventory declares driver branch {plan.driver_branch} but the loaded driver is "
                           f"branch {m['driver_branch']}; run the cuda stage, or fix vllm_fleet_driver_branch")]
    if m["count"] and plan.unified_memory != m["unified_memory"]:
        said = "unified memory" if plan.unified_memory else "dedicated GPU memory"
        found["VF117"] = [("vllm_fleet_gpu.unified_memory",
                           f"the inventory declares {said} but nvidia-smi reports "
                           f"{'unified' if m['unified_memory'] else 'dedicated'} memory; fix vllm_fleet_gpu.unified_memory")]
    return found


def _comparison_rules(found: dict[str, list[Finding]]) -> tuple[Rule, ...]:
    def check(rule_id: str):
        def run(_h: HostView) -> Iterator[Finding]:
            yield from found.get(rule_id, [])
        return run

    summaries = {"VF111": "GPU model as declared", "VF112": "GPU count as declared",
                 "VF113": "GPU memory as declared", "VF114": "compute capability as declared",
                 "VF115": "MIG mode off", "VF116": "driver branch as declared",
                 "VF117": "unified memory as declared"}
    return tuple(Rule(rid, ERROR, summary, check(rid)) for rid, summary in summaries.items())


COMPARISON_IDS = ("VF111", "VF112", "VF113", "VF114", "VF115", "VF116", "VF117")


def preflight_problems(plan: HostPlan, gpu_facts: dict[str, Any], free_disk_bytes: int | None,
                       host: dict[str, Any]) -> list[str]:
    """Sentences saying why this host must not go on to download anything; [] when it may.

    host: name, memtotal_mib, architecture (uname -m, as Ansible's facts say), image_size_gib,
    margin_gib, check_driver_branch."""
    name = str(host.get("name", "?"))
    if not gpu_facts.get("gpus"):
        return ["nvidia-smi reports no GPU; check the driver and that the host is in the right group"]
    m = _measured(plan, gpu_facts, host)
    view = HostView.declared(name, plan)
    view.compute_capability = m["compute_capability"]
    view.gpu_memory_mib = m["memory_mib"]
    view.gpu_count = m["count"]
    view.driver_branch = m["driver_branch"] if m["driver_branch"] is not None else plan.driver_branch
    view.unified_memory = m["unified_memory"]
    view.cpu_arch = str(host.get("architecture") or "") or plan.cpu_arch
    found = _comparison_rules(_comparisons(plan, m, bool(host.get("check_driver_branch", True)))) + HARDWARE_RULES
    problems = [f"{v.rule}: {v.message}" for v in run_rules(view, found) if v.severity == ERROR]
    cfg = plan.serving
    need_gib = float(cfg["model"]["weights_gib"]) + float(host.get("image_size_gib", 25)) + float(host.get("margin_gib", 20))
    if free_disk_bytes is not None and free_disk_bytes / 2**30 < need_gib:
        problems.append(
            f"only {free_disk_bytes / 2**30:.1f} GiB free for the model cache and image but ~{need_gib:.0f} GiB are "
            f"needed (weights {cfg['model']['weights_gib']} GiB + image + margin); free space or point the cache at a bigger disk"
        )
    return problems
