"""Where a variable is set: the 1-based line of a key in a vars file, under a host or group of
a YAML inventory, or on an INI line, for lint's `file:line` output.

A path into a variable (`vllm_fleet_overrides.serving.max_model_len`,
`vllm_fleet_instances[1].port`) is followed down the YAML to the deepest key that exists, so
an error inside a nested mapping points at its own line rather than at the variable's.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Iterable

import yaml

from vllm_fleet.inventory.ini import COMMENT_MARKERS, INI_SECTION
from vllm_fleet.inventory.model import InventoryError
from vllm_fleet.inventory.ranges import expand_hostpattern
from vllm_fleet.inventory.yaml_read import InventoryLoader

_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def split_path(var_path: str) -> list[str | int]:
    """`a.b[1].c` -> ['a', 'b', 1, 'c']."""
    return [int(m.group(1)) if m.group(1) is not None else m.group(2) for m in _PATH_PART.finditer(var_path)]


def locate(path: str, var_name: str, host_or_group: str | None = None) -> int | None:
    """1-based line where `var_name` is set in a YAML or INI file, or None if not found.

    `var_name` may be a path into the variable (`v.key[0].sub`): the line of the deepest part
    found is returned (INI values are one line: the variable's). For a group_vars/host_vars
    file the top-level key is searched. For an inventory file, pass `host_or_group` to find
    the var under that host or group (INI: `[g:vars]` or the host's line); without it the
    first definition anywhere in the file is returned.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    root = None
    if os.path.splitext(path)[1] != ".ini":
        try:
            root = yaml.compose(text, Loader=InventoryLoader)
        except yaml.YAMLError:
            root = None
    parts = split_path(var_name) or [var_name]
    top = str(parts[0])
    if isinstance(root, yaml.MappingNode):
        return _locate_yaml(root, top, parts[1:], host_or_group)
    return _locate_ini(text, top, host_or_group)


def _key_node(mapping: yaml.Node, key: str, depth: int = 0) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(mapping, yaml.MappingNode) or depth > 16:
        return None
    merged = []
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
        if isinstance(k, yaml.ScalarNode) and k.tag == "tag:yaml.org,2002:merge":
            merged += v.value if isinstance(v, yaml.SequenceNode) else [v]
    for source in merged:  # `<<: *defaults`: the key may come from the anchored mapping
        hit = _key_node(source, key, depth + 1)
        if hit:
            return hit
    return None


def _line(hit: tuple[yaml.Node, yaml.Node], rest: list[str | int]) -> int:
    """The line of the deepest part of `rest` found below the key `hit`."""
    line = hit[0].start_mark.line + 1
    node = hit[1]
    for part in rest:
        if isinstance(part, int):
            if not isinstance(node, yaml.SequenceNode) or part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            found = _key_node(node, part)
            if found is None:
                break
            line = found[0].start_mark.line + 1
            node = found[1]
    return line


def _locate_yaml(root: yaml.MappingNode, var_name: str, rest: list[str | int], owner: str | None) -> int | None:
    """Inventory structure first when an owner is named; a vars file's top-level key otherwise."""
    top = _key_node(root, var_name)
    if owner is None and top:
        return _line(top, rest)
    for hit in _yaml_inventory_hits(root, var_name, owner, depth=0):
        return _line(hit, rest)
    return _line(top, rest) if top else None


def _yaml_inventory_hits(groups: yaml.Node, var_name: str, owner: str | None,
                         depth: int) -> Iterable[tuple[yaml.Node, yaml.Node]]:
    """Walk a YAML inventory (group -> vars/hosts/children) yielding the keys that set var_name."""
    if not isinstance(groups, yaml.MappingNode) or depth > 64:
        return
    for gkey, gbody in groups.value:
        group = gkey.value if isinstance(gkey, yaml.ScalarNode) else None
        group_vars = _key_node(gbody, "vars")
        if owner in (None, group) and group_vars:
            hit = _key_node(group_vars[1], var_name)
            if hit:
                yield hit
        hosts = _key_node(gbody, "hosts")
        if hosts and isinstance(hosts[1], yaml.MappingNode):
            for hkey, hbody in hosts[1].value:
                names = _pattern_names(hkey.value) if isinstance(hkey, yaml.ScalarNode) else []
                if owner is None or owner in names:
                    hit = _key_node(hbody, var_name)
                    if hit:
                        yield hit
        children = _key_node(gbody, "children")
        if children:
            yield from _yaml_inventory_hits(children[1], var_name, owner, depth + 1)


def _pattern_names(pattern: str) -> list[str]:
    try:
        return expand_hostpattern(pattern, "", ini=False)[0]
    except InventoryError:
        return [pattern]


def _locate_ini(text: str, var_name: str, owner: str | None) -> int | None:
    group, state = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in COMMENT_MARKERS:
            continue
        m = INI_SECTION.match(line)
        if m:
            group, state = m.group(1), m.group(2) or "hosts"
            continue
        if state == "vars" and owner in (None, group) and "=" in line:
            if line.split("=", 1)[0].strip() == var_name:
                return number
        elif state == "hosts":
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError:
                continue
            if tokens and (owner is None or owner in _pattern_names(tokens[0])):
                if any(t.split("=", 1)[0] == var_name for t in tokens[1:] if "=" in t):
                    return number
    return None
