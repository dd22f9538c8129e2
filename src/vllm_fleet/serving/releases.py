"""What each vLLM release accepts (vllm_releases.yml): flags, env vars, parsers and the
behaviours that changed between releases. Rules and the smoke suite ask here by version."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from vllm_fleet.resources import data_yaml


@lru_cache(maxsize=1)
def releases() -> dict[str, Any]:
    """The parsed vllm_releases.yml. Treat as read-only."""
    return data_yaml("vllm_releases.yml")


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
    """'request_too_large' (prompt + an explicit max_tokens over -> 400) or 'clamped' (since 0.32.0)."""
    return _by_version(releases()["context_errors"], version, "style")


def driver_branch_min(cuda_major: int) -> int | None:
    return releases()["driver_branch_min_for_cuda"].get(int(cuda_major))
