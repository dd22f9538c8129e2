"""Stand-in GPU identities for lab hosts (what the stand-in nvidia-smi reports).

Presets come from lab/nvidia-smi-standin/identities/*.json. A host whose role needs more GPUs
than its preset has (the `fallback` host: 2x A100 for tensor parallel 2) gets a variant with the
preset's GPU repeated, each copy with its own index, UUID and PCI bus id. A host on a driver branch
of its own (HostRole.driver_branch) reports that branch's driver and CUDA version, as the stand-in
repository's nvidia-driver-cuda of that branch would.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from .config import REPO_ROOT, HostRole
from .debs import driver_release
from .proc import LabError

PRESETS = REPO_ROOT / "lab" / "nvidia-smi-standin" / "identities"
# NVLink between SXM cards, as `nvidia-smi topo -m` shows it (A100 SXM4: 12 links).
NVLINK_BY_ARCH = {"Ampere": "NV12", "Hopper": "NV18"}


class IdentityError(LabError):
    pass


def load_preset(stem: str) -> dict[str, Any]:
    path = PRESETS / f"{stem}.json"
    if not path.exists():
        have = ", ".join(sorted(p.stem for p in PRESETS.glob("*.json"))) or "none"
        raise IdentityError(
            f"stand-in GPU identity {path} is missing (presets present: {have}). The identities come "
            "with the nvidia-smi stand-in in lab/nvidia-smi-standin/; add the preset or change "
            "HOST_PLAN in vllm_fleet/lab/config.py."
        )
    return json.loads(path.read_text())


def _multi_gpu(identity: dict[str, Any], count: int, seed: str) -> dict[str, Any]:
    out = copy.deepcopy(identity)
    first = identity["gpus"][0]
    gpus = []
    for i in range(count):
        gpu = copy.deepcopy(first)
        gpu["minor"] = i
        if i:
            # Deterministic per host, so re-running `lab up` gives the same UUIDs.
            gpu["uuid"] = f"GPU-{uuid.uuid5(uuid.NAMESPACE_URL, f'{seed}/{i}')}"
            bus = int(first["pci_bus_id"].split(":")[1], 16) + 8 * i
            gpu["pci_bus_id"] = f"{first['pci_bus_id'].split(':')[0]}:{bus:02X}:00.0"
        gpus.append(gpu)
    out["gpus"] = gpus
    link = NVLINK_BY_ARCH.get((first.get("q") or {}).get("Product Architecture", ""), "PIX")
    out["topology"] = {"links": {f"{a}-{b}": link for a in range(count) for b in range(a + 1, count)}}
    out["_comment"] = (
        f"Lab-generated {count}-GPU variant of a stand-in preset (TEST DOUBLE). " + identity.get("_comment", "")
    )
    return out


def _on_branch(identity: dict[str, Any], branch: int) -> dict[str, Any]:
    release = driver_release(branch)
    version = release["version"]
    if identity["driver_version"] == version:
        return identity
    out = copy.deepcopy(identity)
    out.update(driver_version=version, nvml_version=".".join(version.split(".")[:2]), cuda_version=release["cuda"])
    out["_comment"] = (
        f"Driver {version} (CUDA {release['cuda']}) set by the lab in place of the preset's "
        f"{identity['driver_version']}. " + identity.get("_comment", "")
    )
    return out


def identity_for(role: HostRole, host: str) -> dict[str, Any]:
    identity = load_preset(role.identity)
    if len(identity["gpus"]) < role.gpu_count:
        identity = _multi_gpu(identity, role.gpu_count, host)
    if role.driver_branch is not None:
        identity = _on_branch(identity, role.driver_branch)
    return identity


def write_identity(identity: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(identity, indent=2) + "\n")


def gpu_facts(identity: dict[str, Any], group_default: dict[str, Any] | None) -> dict[str, Any]:
    """The inventory's vllm_fleet_gpu for a host, from its identity (as an operator would write it)."""
    first = identity["gpus"][0]
    facts: dict[str, Any] = dict(group_default or {})
    facts.update({
        "name": first["name"],
        "compute_capability": str(first["compute_cap"]),
        "count": len(identity["gpus"]),
    })
    # Unified-memory parts (GB10) report no memory total; keep the group's figure for them.
    if first.get("memory_total_mib") is not None:
        facts["memory_mib"] = first["memory_total_mib"]
    return facts
