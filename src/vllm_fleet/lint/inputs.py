"""Which variables each rule reads, so that a broken or unknown value silences only the rules
that depend on it: after a schema error every other rule still reports (fixing one error must
not reveal four more), and a templated value skips only what it could have failed.

Paths are into the host's variables; the profile feeds every part of the serving
configuration, and `vllm_fleet_overrides.<part>` is where a host changes that part. A rule
missing from the table is taken to read everything (tests/unit/test_lint_inputs.py requires an
entry for each rule, so a new rule gets one).
"""

from __future__ import annotations

from typing import Any, Iterable

from vllm_fleet.rules.schema import Path

PROFILE: Path = ("vllm_fleet_profile",)
_OV = "vllm_fleet_overrides"
_GPU = "vllm_fleet_gpu"
_UNIFIED: Path = (_GPU, "unified_memory")
_MAX_LEN: Path = (_OV, "serving", "max_model_len")
_UTILIZATION: Path = (_OV, "serving", "gpu_memory_utilization")
_TP: Path = (_OV, "serving", "tensor_parallel_size")
_SPECULATIVE: Path = (_OV, "serving", "speculative_config")

RULE_INPUTS: dict[str, tuple[Path, ...]] = {
    "VF101": (PROFILE, (_GPU, "compute_capability")),
    "VF102": (PROFILE, ("vllm_fleet_cpu_arch",)),
    "VF103": (PROFILE, (_OV, "image"), ("vllm_fleet_cpu_arch",)),
    "VF104": (PROFILE, (_OV, "image"), ("vllm_fleet_driver_branch",)),
    "VF105": (PROFILE, (_GPU, "memory_mib"), _TP, _MAX_LEN, _UTILIZATION, (_OV, "serving", "kv_cache_dtype"),
              (_OV, "serving", "max_num_seqs"), (_OV, "model")),
    "VF201": (PROFILE, _UNIFIED, (_OV, "image"), (_OV, "env")),
    "VF202": (PROFILE, _UNIFIED, (_OV, "serving", "enable_chunked_prefill")),
    "VF203": (PROFILE, _UNIFIED, _MAX_LEN, _UTILIZATION),
    "VF204": (PROFILE, _UNIFIED, _UTILIZATION),
    "VF301": (PROFILE, (_OV, "image")),
    "VF302": (PROFILE, _MAX_LEN),
    "VF303": (PROFILE, (_OV, "serving", "reasoning_parser"), (_OV, "model")),
    "VF304": (PROFILE, (_OV, "serving", "tool_call_parser"), (_OV, "serving", "enable_auto_tool_choice")),
    # every flag: serve_args renders the whole serving part, the model and its revision
    "VF305": (PROFILE, (_OV, "serving"), (_OV, "model"), (_OV, "image")),
    "VF306": (PROFILE, (_OV, "env"), (_OV, "image")),
    "VF307": (PROFILE, (_OV, "serving", "quantization"), (_OV, "model")),
    "VF308": (PROFILE, (_OV, "model")),
    "VF309": (PROFILE, _SPECULATIVE, (_OV, "serving", "moe_backend"), (_OV, "model")),
    "VF310": (PROFILE, (_OV, "model"), (_OV, "serving", "enable_prefix_caching"),
              (_OV, "serving", "enable_chunked_prefill")),
    "VF311": (PROFILE, _SPECULATIVE),
    "VF401": (PROFILE, ("vllm_fleet_instances",), (_GPU, "count"), _TP),
    "VF402": (("vllm_fleet_bind_address",), ("vllm_fleet_api_key",)),
    "VF403": (PROFILE, ("vllm_fleet_bind_address",), ("vllm_fleet_instances",), _TP),
}
_EVERYTHING: tuple[Path, ...] = ((),)
# A waiver with a bad reason still says which rule the host means to waive.
_KEEP_INSIDE = frozenset({"vllm_fleet_waivers"})


def overlaps(a: Path, b: Path) -> bool:
    """One path is the other or inside it."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def inputs(rule_id: str) -> tuple[Path, ...]:
    return RULE_INPUTS.get(rule_id, _EVERYTHING)


def blocked(rule_id: str, unusable: Iterable[Path]) -> bool:
    """Whether the rule reads any of the `unusable` paths."""
    needed = inputs(rule_id)
    return any(overlaps(path, need) for path in unusable for need in needed)


def readers(path: Path, rule_ids: Iterable[str]) -> list[str]:
    """The rules among `rule_ids` that read `path`."""
    return [r for r in rule_ids if any(overlaps(path, need) for need in inputs(r))]


def prune(fleet_vars: dict[str, Any], paths: Iterable[Path]) -> dict[str, Any]:
    """`fleet_vars` without the values at `paths`, for a plan built from the valid parts.

    Copies only the mappings it changes (the inventory's values are shared between hosts). A
    path into a list removes the whole list: an instance list with a broken entry is not a
    list of instances.
    """
    out = dict(fleet_vars)
    for path in paths:
        cut = next((path[:i] for i, part in enumerate(path) if isinstance(part, int)), path)
        if not cut or (cut[0] in _KEEP_INSIDE and len(cut) > 1):
            continue
        node = out
        for part in cut[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                break
            node[part] = node = dict(child)
        else:
            node.pop(cut[-1], None)
    return out
