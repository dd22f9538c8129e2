"""The serving-profile catalogue and how a host's inventory variables select and override it.

Every other part of vllm-fleet (lint, the Ansible filter plugin, smoke tests) gets a host's
serving configuration from `resolve_serving`, so the merge rules live here only.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from vllm_fleet.resources import data_yaml

# Keys a host (via group_vars/host_vars) may override inside `vllm_fleet_overrides`.
OVERRIDABLE = ("image", "model", "serving", "env", "smoke")


class ProfileError(ValueError):
    """A profile name or override that cannot be resolved; the message says what to change."""


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Any]:
    """The parsed profiles.yml (images, models, profiles). Treat as read-only."""
    return data_yaml("profiles.yml")


def profile_names() -> list[str]:
    return sorted(catalogue()["profiles"])


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return base with override merged in: dicts merge recursively, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_serving(profile_name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The effective serving configuration of a host.

    Returns the profile with its `image` and `model` names expanded into their catalogue
    entries, then `overrides` deep-merged. `image` and `model` in overrides may be a name of
    the catalogue or a mapping of fields. `env: {VAR: null}` removes VAR.
    """
    cat = catalogue()
    profiles = cat["profiles"]
    if profile_name not in profiles:
        raise ProfileError(
            f"unknown profile {profile_name!r}; choose one of: {', '.join(sorted(profiles))}"
        )
    base = copy.deepcopy(profiles[profile_name])
    base["name"] = profile_name
    overrides = dict(overrides or {})
    for kind, table in (("image", "images"), ("model", "models")):
        chosen = overrides.get(kind)
        if isinstance(chosen, str):
            base[kind] = chosen
            overrides.pop(kind)
        ref = base[kind]
        if ref not in cat[table]:
            raise ProfileError(f"unknown {kind} {ref!r}; choose one of: {', '.join(sorted(cat[table]))}")
        entry = copy.deepcopy(cat[table][ref])
        entry["name" if kind == "image" else "id"] = ref
        base[kind] = entry
    merged = deep_merge(base, overrides)
    # An override of null removes a profile env var (a value can't be "unset" any other way).
    merged["env"] = {k: v for k, v in (merged.get("env") or {}).items() if v is not None}
    return merged
