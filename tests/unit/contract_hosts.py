"""Hosts for the contract test: every host of the example inventory and generated ones, as an
inventory directory Ansible reads itself (so the roles see what Ansible resolves, and lint's
reader is not used to feed the roles it is compared with)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import yaml

from vllm_fleet.serving.profiles import resolve_serving

REPO = Path(__file__).resolve().parents[2]
GPUS = {
    "hopper": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_mib": 81559},
    "blackwell": {"name": "NVIDIA B200", "compute_capability": "10.0", "memory_mib": 183359},
    "spark": {"name": "NVIDIA GB10", "compute_capability": "12.1", "memory_mib": 122880, "unified_memory": True},
    "fallback": {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0", "memory_mib": 81920},
    "fallback-nvfp4-marlin": {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0", "memory_mib": 81920},
}
BINDS = ["127.0.0.1", "0.0.0.0", "::", "::1", "10.2.3.4", "fd00::5"]
NAME_CHARS = "abcxyz019_-"
CONTRACT_KEY = "contract-test-key"


def _name(rng: random.Random, taken: set[str]) -> str:
    while True:
        middle = "".join(rng.choice(NAME_CHARS) for _ in range(rng.randint(0, 6)))
        name = rng.choice("abgz") + middle + rng.choice("0123456789xyz")
        if name not in taken:
            taken.add(name)
            return name


def generated_host(rng: random.Random, bind: str) -> dict[str, Any]:
    profile = rng.choice(sorted(GPUS))
    tp = int(resolve_serving(profile)["serving"]["tensor_parallel_size"])
    count = 1 if profile == "spark" else tp * rng.randint(1, 2)
    host: dict[str, Any] = {
        "vllm_fleet_profile": profile,
        "vllm_fleet_cpu_arch": "aarch64" if profile == "spark" else "x86_64",
        "vllm_fleet_driver_branch": 580,
        "vllm_fleet_gpu": {**GPUS[profile], "count": count},
        "vllm_fleet_bind_address": bind,
        "vllm_fleet_api_key": CONTRACT_KEY,
    }
    if count > tp or rng.random() < 0.5:
        taken: set[str] = set()
        ports = rng.sample(range(8000, 9000), count // tp)
        host["vllm_fleet_instances"] = [
            {"name": _name(rng, taken), "gpus": list(range(i * tp, (i + 1) * tp)), "port": ports[i]}
            for i in range(count // tp)]
    return host


def write(root: Path, generated: int = 6, seed: int = 20261129) -> tuple[Path, list[str]]:
    """The inventory directory (example inventory + group `generated`) and its host names."""
    shutil.copytree(REPO / "inventory" / "example", root)
    rng = random.Random(seed)
    # Every bind address once at least: the ones whose on-host address differs are the point.
    hosts = {f"gen-{i:02d}": generated_host(rng, BINDS[i % len(BINDS)]) for i in range(generated)}
    (root / "generated.yml").write_text(yaml.safe_dump({"all": {"children": {"generated": {"hosts": hosts}}}}))
    example = yaml.safe_load((root / "hosts.yml").read_text())
    # The router host is no fleet host: the vllm role has nothing to render for it.
    names = sorted((_hosts_of(example) - _hosts_of(example["all"]["children"].get("router"))) | set(hosts))
    return root, names


def routers(root: Path) -> list[str]:
    """The router hosts of the contract inventory (the example's group `router`)."""
    example = yaml.safe_load((root / "hosts.yml").read_text())
    return sorted(_hosts_of(example["all"]["children"].get("router")))


def _hosts_of(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        found |= set((node.get("hosts") or {}))
        for child in (node.get("children") or {}).values():
            found |= _hosts_of(child)
        for key, value in node.items():
            if key not in ("hosts", "children", "vars"):
                found |= _hosts_of(value)
    return found
