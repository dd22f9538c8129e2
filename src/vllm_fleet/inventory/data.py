"""A mirror of ansible.inventory.data.InventoryData, only what affects variable resolution:
groups with their parents, children, direct hosts, priority and inventory-file variables;
hosts with their direct groups and inline variables; the parent/child graph (ancestors and
depths) that orders groups for precedence."""

from __future__ import annotations

from typing import Any

from vllm_fleet.inventory.model import InventoryError, describe


class Group:
    __slots__ = ("name", "vals", "srcs", "priority", "parents", "children", "hosts", "edge_file")

    def __init__(self, name: str) -> None:
        self.name = name
        self.vals: dict[str, Any] = {}
        self.srcs: dict[str, str] = {}
        self.priority = 1
        self.parents: list[str] = []
        self.children: list[str] = []
        self.hosts: dict[str, None] = {}  # ordered set of direct members
        self.edge_file: dict[str, str] = {}  # parent name -> file that declared the edge


class Host:
    __slots__ = ("name", "vals", "srcs", "groups")

    def __init__(self, name: str) -> None:
        self.name = name
        self.vals: dict[str, Any] = {}
        self.srcs: dict[str, str] = {}
        self.groups: dict[str, None] = {}  # direct groups, ordered set


class Data:
    """Mirror of ansible.inventory.data.InventoryData: only what affects resolution."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {"all": Group("all"), "ungrouped": Group("ungrouped")}
        self.hosts: dict[str, Host] = {}
        self.warnings: list[str] = []
        self.add_child("all", "ungrouped", "<implicit>")

    def add_group(self, name: Any, path: str) -> str:
        if not name or not isinstance(name, str):
            raise InventoryError(f"{path}: group name {name!r} is not a non-empty string; quote it or rename the group.")
        if name not in self.groups:
            self.groups[name] = Group(name)
        return name

    def add_host(self, name: Any, group: str | None, port: int | None, path: str) -> None:
        if not name or not isinstance(name, str):
            raise InventoryError(f"{path}: host name {name!r} is not a non-empty string; quote it or rename the host.")
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = Host(name)
            if port:  # Host.__init__: only the first declaration's port is kept
                host.vals["ansible_port"] = int(port)
                host.srcs["ansible_port"] = path
        if group:
            self.groups[group].hosts[name] = None
            host.groups[group] = None

    def set_group_var(self, group: str, key: Any, value: Any, path: str) -> None:
        g = self.groups[group]
        if key == "ansible_group_priority":  # Group.set_variable consumes it
            try:
                g.priority = int(value)
            except (TypeError, ValueError):
                raise InventoryError(
                    f"{path}: ansible_group_priority of group {group!r} is {value!r}; it must be an integer."
                ) from None
            return
        g.vals[key] = value
        g.srcs[key] = path

    def set_host_var(self, host: str, key: Any, value: Any, path: str) -> None:
        h = self.hosts[host]
        h.vals[key] = value
        h.srcs[key] = path

    def add_child(self, parent: str, child: str, path: str) -> None:
        """InventoryData.add_child: `child` may name a group or (YAML only) a host."""
        if child in self.groups:
            if child == parent:
                raise InventoryError(f"{path}: group {parent!r} lists itself as a child; remove that line.")
            g = self.groups[child]
            if parent not in g.edge_file:
                g.parents.append(parent)
                g.edge_file[parent] = path
                self.groups[parent].children.append(child)
        elif child in self.hosts:
            self.add_host(child, parent, None, path)
        else:
            raise InventoryError(f"{path}: {child!r} is listed under {parent!r} but is not a known host nor group; define it.")

    def reconcile(self) -> None:
        """InventoryData.reconcile_inventory: parentless groups under all, ungrouped hosts."""
        for name, g in self.groups.items():
            if name != "all" and not g.parents:
                self.add_child("all", name, "<implicit>")
        ancestors = Ancestors(self.groups)
        ungrouped = self.groups["ungrouped"]
        for host in self.hosts.values():
            closure = ancestors.of_direct(tuple(host.groups))
            if "ungrouped" in closure:
                if closure - {"all", "ungrouped"} and "ungrouped" in host.groups:
                    del host.groups["ungrouped"]
                    del ungrouped.hosts[host.name]
            elif len(closure) == 0 or closure == {"all"}:
                host.groups["ungrouped"] = None
                ungrouped.hosts[host.name] = None


class Ancestors:
    """Memoised ancestor closures; raises on group loops (Ansible refuses them too)."""

    def __init__(self, groups: dict[str, Group]) -> None:
        self.groups = groups
        self._of_group: dict[str, frozenset[str]] = {}
        self._of_direct: dict[tuple[str, ...], frozenset[str]] = {}

    def of_group(self, name: str, stack: tuple[str, ...] = ()) -> frozenset[str]:
        found = self._of_group.get(name)
        if found is not None:
            return found
        if name in stack:
            loop = " -> ".join(stack[stack.index(name):] + (name,))
            where = self.groups[name].edge_file.get(stack[-1], "the inventory")
            raise InventoryError(f"{where}: groups {loop} form a parent/child loop; break it.")
        result: set[str] = {name}
        for parent in self.groups[name].parents:
            result |= self.of_group(parent, stack + (name,))
        self._of_group[name] = frozen = frozenset(result)
        return frozen

    def of_direct(self, direct: tuple[str, ...]) -> frozenset[str]:
        found = self._of_direct.get(direct)
        if found is None:
            acc: set[str] = set()
            for g in direct:
                acc |= self.of_group(g)
            found = self._of_direct[direct] = frozenset(acc)
        return found


def depths(groups: dict[str, Group]) -> dict[str, int]:
    """Longest path from 'all': the fixpoint of Group.add_child_group/_check_children_depth.

    Also refuses parent/child loops, as add_child_group does, even among host-less groups.
    """
    depth: dict[str, int] = {}
    visiting: list[str] = []

    def visit(name: str) -> int:
        d = depth.get(name)
        if d is not None:
            return d
        if name in visiting:
            loop = visiting[visiting.index(name):] + [name]
            where = groups[loop[0]].edge_file.get(loop[1], "the inventory") if len(loop) > 1 else "the inventory"
            raise InventoryError(f"{where}: groups {' -> '.join(loop)} form a parent/child loop; break it.")
        visiting.append(name)
        d = max((visit(p) + 1 for p in groups[name].parents), default=0)
        visiting.pop()
        depth[name] = d
        return d

    for name in groups:
        visit(name)
    return depth



def populate_hosts(inv: Data, names: list[str], variables: Any, group: str, port: int | None, path: str) -> None:
    """Add the hosts of one host pattern to `group`, each with the pattern's variables."""
    if not isinstance(variables, dict):
        first = names[0] if names else "(empty host range)"
        raise InventoryError(
            f"{path}: variables of host {first!r} must be a mapping, not {describe(variables)}."
        )
    for name in names:
        inv.add_host(name, group, port, path)
        for key, value in variables.items():
            inv.set_host_var(name, key, value, path)
