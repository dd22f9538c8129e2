"""The lab's hosts by what they stand in for, named once for every lab test module. The roles
come from the lab's plan (lab/vllm_fleet_lab/config.py: HOST_PLAN, the real-vLLM, arm64 and
router hosts), so a change of plan there cannot leave a test on the wrong host."""

from __future__ import annotations

from vllm_fleet_lab.config import (ARM64_HOST_INDEX, HOST_PLAN, REAL_VLLM_HOST_INDEX, ROUTER_HOST_INDEX,
                                   host_name)


def _plan_host(group: str, identity: str) -> str:
    index = next(i for i, role in enumerate(HOST_PLAN, 1) if (role.group, role.identity) == (group, identity))
    return host_name(index)


# Hosts 1 and 2, the hopper group's stand-ins: the upgrade, router and watchdog drills' (marker
# `hopper`). Hosts 3-5 are the lab stream's while those drills run (tests/workers.py).
H1 = _plan_host("hopper", "h100-80gb-hbm3")
H2 = _plan_host("hopper", "h200")
SPARK = _plan_host("spark", "gb10")  # x86_64, with the lab's VF102/VF113 waivers
FALLBACK = _plan_host("fallback", "a100-80gb")  # 2x A100 on driver branch 570, the CUDA 12 image
REAL_VLLM = host_name(REAL_VLLM_HOST_INDEX)  # a hopper host serving vLLM's CPU build
ARM64 = host_name(ARM64_HOST_INDEX)  # the aarch64 Spark of `lab up --hosts 6`
ROUTER = host_name(ROUTER_HOST_INDEX)
STANDIN_HOPPER = f"{H1}:{H2}"  # an Ansible limit: the hopper hosts that serve the stand-in
