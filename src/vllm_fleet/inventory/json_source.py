"""The output of `ansible-inventory --list` (or `--list --export`) read back into the same model,
so that `lint --from-json` resolves exactly as a path does."""

from __future__ import annotations

from typing import Any

from vllm_fleet.inventory.data import Data
from vllm_fleet.inventory.model import Inventory, InventoryError, describe
from vllm_fleet.inventory.resolve import resolve
from vllm_fleet.inventory.yaml_read import json_markers

JSON_SOURCE = "<inventory-json>"


def load_inventory_json(data: Any, source: str = JSON_SOURCE) -> Inventory:
    """Resolve the output of `ansible-inventory --list` (or `--list --export`); `source` names it
    in messages and as every variable's file."""
    inv = Data()
    add_listing(inv, data, source)
    hosts, resolver = resolve(inv, [], [])
    # `--list` without --export prints no group vars: every variable sits on the host.
    flattened = not any(isinstance(body, dict) and body.get("vars") for name, body in data.items() if name != "_meta")
    return Inventory(hosts=hosts, files=[], warnings=inv.warnings, sources=[source], listings=[source],
                     flattened=flattened, outside_all_of=resolver.outside_all)


def add_listing(inv: Data, data: Any, source: str) -> None:
    """Add the groups, hosts and variables of one `ansible-inventory --list` JSON to `inv`."""
    if not isinstance(data, dict):
        raise InventoryError(f"{source} must be a JSON object as written by `ansible-inventory --list`, not {describe(data)}.")
    meta = data.get("_meta") or {}
    hostvars = meta.get("hostvars") or {} if isinstance(meta, dict) else {}
    if not isinstance(hostvars, dict):
        raise InventoryError(f"{source}: _meta.hostvars must be an object of host name -> variables.")
    for name, body in data.items():
        if name == "_meta":
            continue
        if not isinstance(body, dict):
            raise InventoryError(f"{source}: group {name!r} must be an object with hosts/children/vars, not {describe(body)}.")
        inv.add_group(name, source)
    for name, body in data.items():
        if name == "_meta":
            continue
        for host in _json_list(body, "hosts", name, source):
            inv.add_host(host, name, None, source)
        group_vars = body.get("vars") or {}
        if not isinstance(group_vars, dict):
            raise InventoryError(f"{source}: vars of group {name!r} must be an object of variables.")
        for key, value in group_vars.items():
            inv.set_group_var(name, key, _unwrap(value), source)
    for name, body in data.items():
        if name != "_meta":
            for child in _json_list(body, "children", name, source):
                inv.add_group(child, source)
                inv.add_child(name, child, source)
    for host, variables in hostvars.items():
        if not isinstance(variables, dict):
            raise InventoryError(f"{source}: _meta.hostvars[{host!r}] must be an object of variables.")
        inv.add_host(host, None, None, source)
        for key, value in variables.items():
            inv.set_host_var(host, key, _unwrap(value), source)


def _json_list(body: dict[str, Any], key: str, group: str, source: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list):
        raise InventoryError(f"{source}: {key} of group {group!r} must be a list of names.")
    return value


def _unwrap(value: Any) -> Any:
    """Decode the `__ansible_vault`/`__ansible_unsafe` wrappers of the legacy JSON profile."""
    if isinstance(value, dict):
        marked = json_markers(value)
        if marked is not value:
            return marked
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value
