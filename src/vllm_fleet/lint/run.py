"""`vllm-fleet lint`: every problem of an inventory at once, each naming host, variable and rule.

Hosts with the same fleet variables get the same verdict, so each distinct set is checked once;
that is what keeps 10,000 hosts fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllm_fleet.inventory import Inventory, ResolvedHost, locate
from vllm_fleet.rules import RULES, SEVERITY_ORDER, HostView, Violation, run_rules, schema
from vllm_fleet.rules.base import ERROR
from vllm_fleet.serving.host import is_fleet_host, plan_host
from vllm_fleet.serving.profiles import ProfileError

SCHEMA_RULE = "VF001"


@dataclass
class Located:
    violation: Violation
    file: str | None
    line: int | None

    def sort_key(self) -> tuple:
        v = self.violation
        return (self.file or "~", self.line or 0, v.host, SEVERITY_ORDER[v.severity], v.rule, v.var, v.message)

    def as_dict(self) -> dict[str, Any]:
        return {**self.violation.as_dict(), "file": self.file, "line": self.line}


def fleet_vars(host: ResolvedHost) -> dict[str, Any]:
    return {k: v for k, v in host.vars.items() if k.startswith(schema.NAMESPACE)}


def in_scope(host: ResolvedHost) -> bool:
    return is_fleet_host(host.vars)


def check_fleet_vars(fv: dict[str, Any], host_name: str) -> list[Violation]:
    """Schema errors, then (when the variables are sound enough to resolve) the serving rules."""
    found = [Violation(SCHEMA_RULE, ERROR, host_name, var, msg) for var, msg in schema.validate_host(fv)]
    broken = {v.var.split(".")[0].split("[")[0] for v in found}
    needed = {"vllm_fleet_profile", "vllm_fleet_overrides", "vllm_fleet_gpu", "vllm_fleet_cpu_arch",
              "vllm_fleet_driver_branch", "vllm_fleet_instances", "vllm_fleet_bind_address", "vllm_fleet_waivers"}
    if broken & needed or not needed - {"vllm_fleet_overrides", "vllm_fleet_instances", "vllm_fleet_bind_address",
                                        "vllm_fleet_waivers"} <= set(fv):
        return found
    try:
        plan = plan_host(fv)
    except ProfileError as exc:
        return found + [Violation(SCHEMA_RULE, ERROR, host_name, "vllm_fleet_overrides", str(exc))]
    return found + run_rules(HostView.declared(host_name, plan), RULES)


def _signature(fv: dict[str, Any]) -> str:
    return json.dumps(fv, sort_keys=True, default=repr)


def lint_inventory(inventory: Inventory) -> tuple[list[Located], int]:
    """All violations of the inventory, located and sorted, and the number of hosts checked."""
    verdicts: dict[str, list[Violation]] = {}
    line_cache: dict[tuple[str, str, str], int | None] = {}
    located: list[Located] = []
    checked = 0
    for name in sorted(inventory.hosts):
        host = inventory.hosts[name]
        if not in_scope(host):
            continue
        checked += 1
        fv = fleet_vars(host)
        key = _signature(fv)
        if key not in verdicts:
            verdicts[key] = check_fleet_vars(fv, "")
        for v in verdicts[key]:
            v = Violation(v.rule, v.severity, name, v.var, v.message)
            top = v.var.split(".")[0].split("[")[0]
            source = host.sources.get(top) or host.sources.get("vllm_fleet_profile")
            line = None
            if source and not source.startswith("<"):
                var = top if top in host.sources else "vllm_fleet_profile"
                # A key's line in a vars file is the same for every host; only inventory
                # files, where hosts carry inline vars, need the host in the key.
                per_host = not any(d in Path(source).parts for d in ("group_vars", "host_vars"))
                cache_key = (source, var, name if per_host else "")
                if cache_key not in line_cache:
                    line_cache[cache_key] = locate(source, var, name)
                line = line_cache[cache_key]
            located.append(Located(v, source, line))
    located.sort(key=Located.sort_key)
    return located, checked


