"""Ansible's resolved host variables as plain data for vllm_fleet's code, shared by the filter
and the validate action so that both hand the package the same values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

NAMESPACE = "vllm_fleet_"


def plain(value: Any) -> Any:
    """Ansible's lazily templated containers as plain Python data, for vllm_fleet's code (which
    copies and merges them). Inventory values are JSON-shaped, so JSON is the exact round trip."""
    return json.loads(json.dumps(value, default=str))


def fleet_vars(hostvars: Mapping[str, Any]) -> dict[str, Any]:
    """A host's vllm_fleet_* variables, resolved."""
    return {k: plain(hostvars[k]) for k in list(hostvars) if str(k).startswith(NAMESPACE)}


def fleet_member(hostvars: Mapping[str, Any], name: str) -> Any:
    """Host `name` as a router sees it (vllm_fleet.serving.router.FleetMember); None when it is
    no fleet host or its profile cannot be resolved."""
    from vllm_fleet.serving.router import fleet_member as member

    host = hostvars[name]
    if "vllm_fleet_profile" not in host:
        return None
    return member(name, fleet_vars(host), plain(host["group_names"]), plain(host.get("ansible_host")))


def router_settings(hostvars: Mapping[str, Any], router_host: str) -> Any:
    """A router host's vllm_fleet_router, resolved."""
    from vllm_fleet.serving.router import VAR

    return plain(hostvars[router_host].get(VAR)) or {}


def router_plan(hostvars: Mapping[str, Any], router_host: str, groups: Mapping[str, Any]) -> dict[str, Any]:
    """The plan of router_host (vllm_fleet.serving.router) over the fleet hosts of its groups.
    Raises RouterError."""
    from vllm_fleet.serving.router import plan_router

    settings = router_settings(hostvars, router_host)
    wanted = settings.get("groups") if isinstance(settings, dict) else None
    names = {n for g in (wanted if isinstance(wanted, list) else ["all"]) for n in groups.get(g, [])}
    members = {name: m for name in sorted(names) if (m := fleet_member(hostvars, name)) is not None}
    return plan_router(router_host, settings, members).as_dict()
