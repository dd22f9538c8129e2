"""The `yaml` inventory plugin (plugins/inventory/yaml.py): groups with `vars`, `children` and
`hosts`, a single name allowed as a string, non-mapping entries skipped with a warning as
Ansible does."""

from __future__ import annotations

from typing import Any

from vllm_fleet.inventory.data import Data, populate_hosts
from vllm_fleet.inventory.model import InventoryError, describe
from vllm_fleet.inventory.ranges import expand_hostpattern


def parse_yaml_inventory(inv: Data, data: dict[Any, Any], path: str) -> None:
    for group_name, group_data in data.items():
        _parse_yaml_group(inv, group_name, group_data, path)


def _parse_yaml_group(inv: Data, group: Any, group_data: Any, path: str) -> Any:
    if not isinstance(group_data, (dict, type(None))):
        inv.warnings.append(f"{path}: skipping {group!r}, which is not a valid group definition (not a mapping).")
        return group
    group = inv.add_group(group, path)
    if group_data is None:
        return group
    for section in ("vars", "children", "hosts"):
        value = group_data.get(section)
        if isinstance(value, str):  # the yaml plugin allows a single name as a string
            group_data = {**group_data, section: {value: None}}
        elif section in group_data and not isinstance(value, (dict, type(None))):
            raise InventoryError(
                f"{path}: the {section!r} entry of group {group!r} must be a mapping, not {describe(value)}."
            )
    for key, value in group_data.items():
        if value is None:
            continue
        if not isinstance(value, dict):
            inv.warnings.append(f"{path}: skipping key {key!r} in group {group!r}: it is not a mapping.")
        elif key == "vars":
            for var, var_value in value.items():
                inv.set_group_var(group, var, var_value, path)
        elif key == "children":
            for sub, sub_data in value.items():
                sub = _parse_yaml_group(inv, sub, sub_data, path)
                inv.add_child(group, sub, path)
        elif key == "hosts":
            for pattern, host_vars in value.items():
                names, port = expand_hostpattern(pattern, path, ini=False)
                populate_hosts(inv, names, host_vars or {}, group, port, path)
        else:
            inv.warnings.append(
                f"{path}: skipping unexpected key {key!r} in group {group!r}; only vars, children and hosts are valid."
            )
    return group

