"""The serving configuration of the lab host that runs real vLLM (CPU build): derived from its
group's real (GPU) profile through lab/real-vllm/cpu-profile.yml, which names every option a CPU
or the tiny model cannot run, what replaces it, and why.
"""

from __future__ import annotations

import copy
import platform
from pathlib import Path
from typing import Any

import yaml

from vllm_fleet.serving.profiles import catalogue, deep_merge
from .config import REPO_ROOT
from .proc import LabError

CPU_PROFILE = REPO_ROOT / "lab" / "real-vllm" / "cpu-profile.yml"


def load_cpu_profile(path: Path = CPU_PROFILE) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"cannot read the lab CPU profile {path} ({exc}); restore it from git.") from exc
    if not isinstance(data, dict) or data.get("schema_version") != 1:
        raise LabError(f"{path} is not a version-1 lab CPU profile; restore it from git.")
    return data


def cpu_overrides(profile_name: str, image: dict[str, Any] | None = None,
                  cpu_profile: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The `vllm_fleet_overrides` of a lab host that runs real vLLM (CPU), and why each change.

    Derived from the host's real profile and lab/real-vllm/cpu-profile.yml: returns the overrides
    (deep-merged over the profile by resolve_serving, like every host's) and (option, reason) pairs
    for everything removed or changed. `image`: repository and digest of the pushed real-vLLM
    image, merged over the CPU profile's image fields (left out when None)."""
    data = cpu_profile if cpu_profile is not None else load_cpu_profile()
    profiles = catalogue()["profiles"]
    if profile_name not in profiles:
        raise LabError(f"unknown profile {profile_name!r}; choose one of: {', '.join(sorted(profiles))}.")
    profile = profiles[profile_name]
    reasons: list[tuple[str, str]] = []
    overrides: dict[str, Any] = {}

    if image is not None:
        overrides["image"] = {**copy.deepcopy(data.get("image") or {}), **image}
    model = copy.deepcopy(data["model"])
    model_reason = " ".join(str(model.pop("reason", "")).split())
    if model["id"] != profile["model"]:
        reasons.append(("model", f"{profile['model']} -> {model['id']}: {model_reason}"))
    overrides["model"] = model

    serving: dict[str, Any] = {}
    for key, rule in (data.get("serving") or {}).items():
        current = profile["serving"].get(key)
        if current != rule["set"]:
            serving[key] = copy.deepcopy(rule["set"])
            what = "removed" if rule["set"] is None else f"{current!r} -> {rule['set']!r}"
            reasons.append((f"serving.{key}", f"{what}: {' '.join(str(rule['reason']).split())}"))
    overrides["serving"] = serving

    env_rules = data.get("env") or {}
    env: dict[str, Any] = {}
    keep = env_rules.get("keep") or {}
    for var in sorted(profile.get("env") or {}):
        if var in keep:
            continue
        why = (env_rules.get("remove") or {}).get(var) or env_rules.get("default_reason") or ""
        env[var] = None
        reasons.append((f"env.{var}", f"removed: {' '.join(str(why).split())}"))
    for var, rule in (env_rules.get("set") or {}).items():
        if (profile.get("env") or {}).get(var) != rule["value"]:
            env[var] = str(rule["value"])
            reasons.append((f"env.{var}", f"set to {rule['value']!r}: {' '.join(str(rule['reason']).split())}"))
    overrides["env"] = env
    return overrides, reasons


def cpu_host_vars(profile_name: str, image: dict[str, Any] | None = None, *,
                  base_overrides: dict[str, Any] | None = None,
                  image_size_gib: float | None = None) -> dict[str, Any]:
    """host_vars for the real-vLLM lab host, on top of what the lab writes for every host.

    base_overrides: the group-level vllm_fleet_overrides the host would inherit (the lab's
    offline.yml); host_vars replace that variable as a whole, so it is merged in here first (its
    stand-in image and model are replaced by the real ones)."""
    overrides, reasons = cpu_overrides(profile_name, image)
    merged = deep_merge(copy.deepcopy(base_overrides or {}), overrides)
    if "model" in (base_overrides or {}):
        merged["model"] = overrides["model"]  # the stand-in's weights_gib etc. are not the tiny model's
    out: dict[str, Any] = {
        "vllm_fleet_overrides": merged,
        # One instance on one stand-in GPU: tensor_parallel_size is 1 now (the role checks the count).
        "vllm_fleet_instances": [{"name": "main", "gpus": [0], "port": 8000}],
        # The host is what this machine is (the image is built for it), whatever its group says;
        # lint relaxes the profile's CPU-arch rule for lab stand-in hosts (VF102 -> note).
        "vllm_fleet_cpu_arch": {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64",
                                "arm64": "aarch64"}.get(platform.machine(), platform.machine()),
        # Not a vllm_fleet_* name: lint refuses unknown variables of its namespace.
        "lab_real_vllm_changes": [f"{opt}: {why}" for opt, why in reasons],
    }
    if image_size_gib is not None:
        out["preflight_image_size_gib"] = max(1, round(image_size_gib + 0.5))
    return out
