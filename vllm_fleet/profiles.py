"""The serving-profile catalogue and how a host's inventory variables select and override it.

Every other part of vllm-fleet (lint, the Ansible filter plugin, smoke tests) gets a host's
serving configuration from `resolve_serving`, so the merge rules live here only.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

DATA_DIR = Path(__file__).resolve().parent / "data"

# Keys a host (via group_vars/host_vars) may override inside `vllm_fleet_overrides`.
OVERRIDABLE = ("image", "model", "serving", "env", "smoke")


class ProfileError(ValueError):
    """A profile name or override that cannot be resolved; the message says what to change."""


def _load_data(name: str) -> dict[str, Any]:
    text = (DATA_DIR / name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=_Loader)


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Any]:
    """The parsed profiles.yml (images, models, profiles). Treat as read-only."""
    return _load_data("profiles.yml")


@lru_cache(maxsize=1)
def releases() -> dict[str, Any]:
    """The parsed vllm_releases.yml. Treat as read-only."""
    return _load_data("vllm_releases.yml")


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


def version_tuple(version: str) -> tuple[int, ...]:
    """'0.15.1' -> (0, 15, 1); suffixes such as 'rc1' or '+cu130' are ignored."""
    parts = []
    for piece in str(version).split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def available_in(spec: dict[str, Any], version: str) -> bool:
    """Whether a flag/env entry of vllm_releases.yml exists in `version`."""
    v = version_tuple(version)
    if "since" in spec and v < version_tuple(spec["since"]):
        return False
    if "until" in spec and v >= version_tuple(spec["until"]):
        return False
    return True


def _by_version(table: list[dict[str, Any]], version: str, key: str) -> Any:
    v = version_tuple(version)
    chosen = None
    for row in table:
        if v >= version_tuple(row["since"]):
            chosen = row[key]
    return chosen


def reasoning_field(version: str) -> str:
    """The response field that carries reasoning text for this vLLM version."""
    return _by_version(releases()["reasoning_field"], version, "field")


def context_error_style(version: str) -> str:
    """'request_too_large' (prompt + max_tokens over -> 400) or 'clamped' (since 0.20.0)."""
    return _by_version(releases()["context_errors"], version, "style")


def driver_branch_min(cuda_major: int) -> int | None:
    return releases()["driver_branch_min_for_cuda"].get(int(cuda_major))
