"""Which hosts are fleet hosts, and VF002 for a host that looks like one but is not.

A fleet host is a host with `vllm_fleet_profile` (serving.host.is_fleet_host): lint checks
exactly those, and site.yml targets exactly those. Every other host of the inventory (a
bastion, kubespray's control plane) is left alone, even though group_vars/all gives it the
fleet-wide defaults. But a host that gets vllm_fleet_* variables from anywhere else - its own
host_vars, or a group other than `all` - was meant to be one: its profile is missing (VF002).
"""

from __future__ import annotations

from vllm_fleet.inventory import Inventory, ResolvedHost
from vllm_fleet.lint.check import UNPROFILED_RULE
from vllm_fleet.rules import ERROR, INFO, Violation
from vllm_fleet.rules.schema import NAMESPACE
from vllm_fleet.serving.host import is_fleet_host

_NAMES_SHOWN = 5


def in_scope(host: ResolvedHost) -> bool:
    return is_fleet_host(host.vars)


def unprofiled(inventory: Inventory, host: ResolvedHost) -> tuple[Violation, str] | None:
    """VF002 and the file to point at, for a non-fleet host with fleet variables of its own."""
    outside = inventory.vars_outside_all(host.name)
    fleet = sorted(k for k in outside if isinstance(k, str) and k.startswith(NAMESPACE))
    if not fleet:
        return None
    files = sorted({outside[k] for k in fleet if outside[k]})
    origin = f" (from {', '.join(files)})" if files else ""
    message = (f"this host has {', '.join(fleet)}{origin} but no vllm_fleet_profile, so it is not a fleet host: "
               "site.yml leaves it alone and lint does not check it. Set vllm_fleet_profile if it is meant to "
               "serve, or remove these variables")
    return Violation(UNPROFILED_RULE, ERROR, host.name, fleet[0], message), outside[fleet[0]]


def left_out_note(names: list[str]) -> Violation:
    """The one note that says how many hosts are not fleet hosts."""
    shown = ", ".join(names[:_NAMES_SHOWN]) + (f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else "")
    return Violation(UNPROFILED_RULE, INFO, "all", "vllm_fleet_profile",
                     f"{len(names)} host(s) have no vllm_fleet_profile, so they are not fleet hosts and lint left "
                     f"them out: {shown}")
