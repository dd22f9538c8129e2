"""Precedence (vars/manager.py, default `VARIABLE_PRECEDENCE`, hash_behaviour=replace):
inventory-file vars of `all`, then of the host's groups sorted by (depth,
ansible_group_priority, name); then `group_vars/all` of each source, then `group_vars/<g>` of
each source (source-major); then the host's inventory-file vars; then `host_vars/<host>`.
So `group_vars/all.yml` beats `[web:vars]` in the inventory file.

`ansible-inventory --host` drops `C.INTERNAL_STATIC_VARS` (inventory_hostname, group_names...).
"""

from __future__ import annotations

from typing import Any

from vllm_fleet.inventory.data import Ancestors, Data, Group, depths
from vllm_fleet.inventory.model import ResolvedHost
from vllm_fleet.inventory.vars_dirs import VarsDir

# C.INTERNAL_STATIC_VARS: ansible-inventory removes these from what it prints.
_INTERNAL_STATIC_VARS = frozenset({
    "ansible_async_path", "ansible_collection_name", "ansible_config_file",
    "ansible_dependent_role_names", "ansible_diff_mode", "ansible_facts", "ansible_forks",
    "ansible_inventory_sources", "ansible_limit", "ansible_play_batch", "ansible_play_hosts",
    "ansible_play_hosts_all", "ansible_play_role_names", "ansible_playbook_python",
    "ansible_role_name", "ansible_role_names", "ansible_run_tags", "ansible_skip_tags",
    "ansible_verbosity", "ansible_version", "inventory_dir", "inventory_file",
    "inventory_hostname", "inventory_hostname_short", "groups", "group_names", "hostvars",
    "playbook_dir", "play_hosts", "role_name", "role_names", "role_path", "role_uuid",
})


# The group part of a host's variables, shared by every host with the same groups: values,
# var -> file, the sorted group list and the vault-encrypted vars files among the layers.
_Chain = tuple[dict[str, Any], dict[str, str], list[str], tuple[str, ...]]


class Resolver:
    """Every host's variables by precedence; also, on demand, where a host's variables come from."""

    def __init__(self, inv: Data, group_dirs: list[VarsDir], host_dirs: list[VarsDir]) -> None:
        self.inv = inv
        self.group_dirs = group_dirs
        self.host_dirs = host_dirs
        groups = inv.groups
        depths(groups)  # loops first: reconcile's closures assume a DAG
        inv.reconcile()
        self.depth = depths(groups)
        self.ancestors = Ancestors(groups)

    def _ordered(self, closure: frozenset[str]) -> list[Group]:
        """The host's groups other than `all`, in precedence order (depth, priority, name)."""
        groups, depth = self.inv.groups, self.depth
        return sorted((groups[g] for g in closure if g != "all"), key=lambda g: (depth[g.name], g.priority, g.name))

    def hosts(self) -> dict[str, ResolvedHost]:
        chains: dict[frozenset[str], _Chain] = {}
        resolved: dict[str, ResolvedHost] = {}
        for host in self.inv.hosts.values():
            closure = self.ancestors.of_direct(tuple(host.groups))  # includes 'all' after reconcile
            chain = chains.get(closure)
            if chain is None:
                chain = chains[closure] = self._merge_groups(closure)
            gvals, gsrcs, group_list, encrypted = chain
            vals = gvals | host.vals
            srcs = gsrcs | host.srcs
            for vdir in self.host_dirs:
                layer = vdir.vars_for(host.name)
                if layer is not None:
                    vals.update(layer[0])
                    srcs.update(layer[1])
                    encrypted += layer[2]
            if not _INTERNAL_STATIC_VARS.isdisjoint(vals):
                for key in _INTERNAL_STATIC_VARS.intersection(vals):
                    del vals[key]
                    srcs.pop(key, None)
            resolved[host.name] = ResolvedHost(host.name, group_list, vals, srcs, encrypted)
        return resolved

    def _merge_groups(self, closure: frozenset[str]) -> _Chain:
        """VariableManager.get_vars for the group part, shared by every host with this closure."""
        ordered = self._ordered(closure)
        all_group = self.inv.groups["all"]
        vals: dict[str, Any] = dict(all_group.vals)
        srcs: dict[str, str] = dict(all_group.srcs)
        encrypted: tuple[str, ...] = ()
        for g in ordered:  # groups_inventory
            vals.update(g.vals)
            srcs.update(g.srcs)
        names = ["all"] + [g.name for g in ordered]
        for name_set in (names[:1], names[1:]):  # all_plugins_inventory, then groups_plugins_inventory
            for vdir in self.group_dirs:
                for name in name_set:
                    layer = vdir.vars_for(name)
                    if layer is not None:
                        vals.update(layer[0])
                        srcs.update(layer[1])
                        encrypted += layer[2]
        return vals, srcs, sorted(closure), encrypted

    def outside_all(self, name: str) -> dict[str, str]:
        """Variables of host `name` set by a layer other than group `all`'s -> the file of the
        last such layer that sets each. Walked on demand: lint asks only for non-fleet hosts."""
        host = self.inv.hosts[name]
        closure = self.ancestors.of_direct(tuple(host.groups))
        found: dict[str, str] = {}
        ordered = self._ordered(closure)
        for g in ordered:
            found.update(g.srcs)
        for vdir in self.group_dirs:
            for g in ordered:
                layer = vdir.vars_for(g.name)
                if layer is not None:
                    found.update(layer[1])
        found.update(host.srcs)
        for vdir in self.host_dirs:
            layer = vdir.vars_for(name)
            if layer is not None:
                found.update(layer[1])
        return found


def resolve(inv: Data, group_dirs: list[VarsDir], host_dirs: list[VarsDir]) -> tuple[dict[str, ResolvedHost], Resolver]:
    """Every host resolved, and the resolver (for `Inventory.vars_outside_all`)."""
    resolver = Resolver(inv, group_dirs, host_dirs)
    return resolver.hosts(), resolver
