"""Resolve every host's variables from a static Ansible inventory, as Ansible 2.19 does, fast.

`ansible-inventory` pays a large fixed start-up and then merges variables host by host. The
lint only needs the *result* of that merge, so this module re-implements the parts of
ansible-core that decide it (read from the 2.19 sources, not guessed):

* sources (`inventory/manager.py`): a directory is read recursively in sorted order, skipping
  hidden names, `group_vars`, `host_vars`, `vars_plugins` and the `INVENTORY_IGNORE_EXTS`
  suffixes. A file with no extension or `.yml/.yaml/.json` is tried as YAML first and then as
  INI (the `yaml` plugin runs before `ini`); any other file is INI.
* the `yaml` and `ini` inventory plugins (`plugins/inventory/{yaml,ini}.py`), including host
  ranges, `host:port`, INI `[g:vars]`/`[g:children]` with forward references and INI values
  parsed by `ast.literal_eval` after `shlex` (so `a=yes` is the string "yes", `b=True` is the
  boolean, `c='1'` is the *integer* 1 because shlex has already eaten the quotes).
* `host_group_vars` (`plugins/vars/host_group_vars.py` + `DataLoader.find_vars_files`): only
  `group_vars/`/`host_vars/` next to each `-i` source; the first of `NAME`, `NAME.yml`,
  `NAME.yaml`, `NAME.json` that exists wins (a directory `NAME/` is read recursively in sorted
  order; `web.yaml` is ignored when `web.yml` exists).
* precedence (`vars/manager.py`, default `VARIABLE_PRECEDENCE`, hash_behaviour=replace):
  inventory-file vars of `all`, then of the host's groups sorted by (depth,
  ansible_group_priority, name); then `group_vars/all` of each source, then `group_vars/<g>` of
  each source (source-major); then the host's inventory-file vars; then `host_vars/<host>`.
  So `group_vars/all.yml` beats `[web:vars]` in the inventory file.
* `ansible-inventory --host` drops `C.INTERNAL_STATIC_VARS` (inventory_hostname, group_names...).

Play-adjacent vars (a `group_vars/` in the current directory, which `ansible-inventory` also
reads) are deliberately not modelled: the lint checks the inventory, not the caller's cwd.

Values are shared between hosts that inherit them from the same group: treat `vars` as
read-only (copy before mutating), like `profiles.catalogue()`.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import string
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

try:
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _BaseLoader = yaml.SafeLoader

JSON_SOURCE = "<inventory-json>"

# inventory/manager.py IGNORED: always-skipped names plus C.INVENTORY_IGNORE_EXTS
# (REJECT_EXTS + .orig .cfg .retry). Matched against the bare entry name, like Ansible.
_IGNORED_ENTRY = re.compile(
    r"^\.|^host_vars$|^group_vars$|^vars_plugins$"
    r"|(?:\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.cfg|\.retry)$"
)
# C.YAML_FILENAME_EXTENSIONS with '' first: find_vars_files tries the bare name first.
_VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")
# The yaml inventory plugin's default `yaml_extensions`; '' (no extension) is accepted too.
_YAML_INVENTORY_EXTENSIONS = frozenset({"", ".yml", ".yaml", ".json"})
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
# C.INVALID_VARIABLE_NAMES. The INI plugin calls inventory.group.to_safe_group_name without
# force, and TRANSFORM_INVALID_GROUP_CHARS defaults to 'never': names are kept, with a warning.
_INVALID_GROUP_CHARS = re.compile(r"^[\d\W]|[^\w]")
_INI_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:\#.*)?$")
_INI_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:\#.*)?$")
# Lines free of these characters split exactly like shlex.split(comments=True): shlex only
# treats space/tab/CR/LF as separators, str.split() also \x0b\x0c\x1c-\x1f.
_SHLEX_NEEDED = re.compile(r"[\"'\\#\x0b\x0c\x1c-\x1f]")
# INI values that ast.literal_eval is certain to reject (a bare name, dotted/dashed words), or
# that are plain decimal ints: skipping literal_eval for them is the common-case speed-up.
_INI_PLAIN_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_INI_PLAIN_INT = re.compile(r"(?:0|[1-9][0-9]*)\Z")
_COMMENT_MARKERS = (";", "#")
_PORT_SUFFIX = re.compile(r":[0-9]+\Z")


class InventoryError(Exception):
    """An inventory that cannot be resolved; the message names the file and what to fix."""


class VaultValue:
    """A `!vault` value, kept encrypted: the lint must never need the plaintext."""

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: str) -> None:
        self.ciphertext = ciphertext

    def __str__(self) -> str:
        return "<vault>"

    def __repr__(self) -> str:
        return "VaultValue(<vault>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VaultValue) and other.ciphertext == self.ciphertext

    def __hash__(self) -> int:
        return hash(self.ciphertext)


@dataclass
class ResolvedHost:
    name: str
    groups: list[str]          # all groups the host belongs to incl. ancestors and 'all', sorted
    vars: dict[str, Any]       # final variables, as `ansible-inventory --host NAME` prints them
    sources: dict[str, str]    # var name -> path of the file whose value won


@dataclass
class Inventory:
    hosts: dict[str, ResolvedHost]
    files: list[str]           # every file read
    warnings: list[str] = field(default_factory=list)  # what Ansible would warn about and skip


# --------------------------------------------------------------------------- file reading


class _InventoryLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """CSafeLoader plus the Ansible-specific tags, so vaulted/unsafe files load."""


def _construct_vault(loader: yaml.BaseLoader, node: yaml.Node) -> VaultValue:
    ciphertext = _construct_unsafe(loader, node)
    if not isinstance(ciphertext, str):
        raise yaml.constructor.ConstructorError(
            None, None, f"the {node.tag!r} tag requires a string value", node.start_mark
        )
    return VaultValue(ciphertext)


def _construct_unsafe(loader: yaml.BaseLoader, node: yaml.Node) -> Any:
    # Ansible re-resolves the node's implicit tag, so `!unsafe 5` is the int 5; only the
    # template trust differs, and we never template.
    tag = loader.resolve(type(node), node.value, (True, False))
    copied = type(node)(tag, node.value, node.start_mark, node.end_mark)
    if isinstance(node, yaml.ScalarNode):
        copied.style = node.style
    return loader.construct_object(copied, deep=True)


_InventoryLoader.add_constructor("!vault", _construct_vault)
_InventoryLoader.add_constructor("!vault-encrypted", _construct_vault)
_InventoryLoader.add_constructor("!unsafe", _construct_unsafe)
# AnsibleConstructor accepts these two python/* tags; SafeLoader alone would reject them.
_InventoryLoader.add_constructor(
    "tag:yaml.org,2002:python/unicode", yaml.constructor.SafeConstructor.construct_yaml_str
)
_InventoryLoader.add_constructor(
    "tag:yaml.org,2002:python/dict", yaml.constructor.SafeConstructor.construct_yaml_map
)


def _json_markers(obj: dict[str, Any]) -> Any:
    """The legacy JSON profile ansible-inventory writes: unsafe strings and vault blobs."""
    if len(obj) == 1:
        if "__ansible_unsafe" in obj and isinstance(obj["__ansible_unsafe"], str):
            return obj["__ansible_unsafe"]
        if "__ansible_vault" in obj and isinstance(obj["__ansible_vault"], str):
            return VaultValue(obj["__ansible_vault"])
    return obj


class _Reader:
    """Reads and caches files, recording each one read (for `Inventory.files`)."""

    def __init__(self) -> None:
        self.files: dict[str, None] = {}  # ordered set
        self._vars_cache: dict[str, dict[str, Any]] = {}

    def read_bytes(self, path: str) -> bytes:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise InventoryError(f"cannot read {path}: {exc.strerror or exc}; check the path and its permissions.") from None
        self.files[path] = None
        return data

    def load_vars_file(self, path: str, kind: str) -> dict[str, Any]:
        """A group_vars/host_vars file's mapping; empty files are no vars, as in Ansible."""
        cached = self._vars_cache.get(path)
        if cached is not None:
            return cached
        text = _decode(self.read_bytes(path), path)
        data = _parse_yaml_text(text, path)
        if not data:  # None, {}, [], "" ...: host_group_vars skips falsy data
            data = {}
        elif not isinstance(data, dict):
            raise InventoryError(
                f"{kind} file {path} must contain a mapping of variable names to values at the "
                f"top level, but it contains {_describe(data)}; turn it into `name: value` lines."
            )
        self._vars_cache[path] = data
        return data


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    kind = type(value).__name__
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} ({value!r:.40})"


def _decode(data: bytes, path: str) -> str:
    if b"\x00" in data:
        raise InventoryError(f"{path} is a binary file, not a YAML/INI text file; remove it or point -i elsewhere.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InventoryError(
            f"{path} line {line} is not valid UTF-8 text (is it a binary file?); save it as UTF-8 or remove it."
        ) from None


def _parse_yaml_text(text: str, path: str) -> Any:
    """JSON first, then YAML, like ansible.parsing.utils.yaml.from_yaml."""
    head = text.lstrip()[:1]
    if head in ("{", "["):
        try:
            return json.loads(text, object_hook=_json_markers)
        except (ValueError, RecursionError):
            pass
    fast = _fast_yaml(text)
    if fast is not None:
        return fast
    try:
        return yaml.load(text, Loader=_InventoryLoader)
    except yaml.YAMLError as exc:
        raise InventoryError(_yaml_error_sentence(path, exc)) from None
    except RecursionError:
        raise InventoryError(f"{path} is nested too deeply to parse; flatten it.") from None
    except Exception as exc:  # noqa: BLE001 - e.g. `!!int abc` raises ValueError inside PyYAML
        raise InventoryError(f"{path} has a value YAML cannot build: {exc}; fix or quote it.") from None


# ---- fast path for the block-mapping subset of YAML that inventories are mostly made of.
# PyYAML's constructor is pure Python (~0.2 s for 10,000 host lines); this reads lines of the
# form `key:`, `key: scalar`, `key: "str"` and `key: {k: v, ...}` with a regex and gives up
# (returns None, so the full loader runs) on anything else: sequences, anchors, tags, block
# scalars, tabs, comments after values, a deeper line after a scalar (multi-line plain
# scalar), odd indentation. Scalars are resolved by PyYAML's own YAML 1.1 resolver.

_FAST_LINE = re.compile(
    r'(?P<indent> *)(?:(?P<key>[A-Za-z0-9_][A-Za-z0-9_.\-]*)|"(?P<qkey>[^"\\]*)"):'
    r'(?: +(?:(?P<flow>\{[^{}\[\]"\'#&*!|>%@`]*\})|"(?P<dq>[^"\\]*)"|\'(?P<sq>[^\']*)\''
    r'|(?P<plain>[A-Za-z0-9_./~+(][^#\t]*?)))? *\Z'
)
_FAST_FLOW_ITEM = re.compile(r" *([A-Za-z0-9_][A-Za-z0-9_.\-]*): +([A-Za-z0-9_./~+][A-Za-z0-9_./~+ \-]*?) *\Z")
# tabs, CR and control characters have YAML rules of their own (or are errors)
_FAST_BAD_CHARS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_RESOLVER = yaml.resolver.Resolver()
_SCALAR_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_FAST_TAGS = {
    "tag:yaml.org,2002:int": yaml.constructor.SafeConstructor.construct_yaml_int,
    "tag:yaml.org,2002:float": yaml.constructor.SafeConstructor.construct_yaml_float,
    "tag:yaml.org,2002:bool": yaml.constructor.SafeConstructor.construct_yaml_bool,
    "tag:yaml.org,2002:null": yaml.constructor.SafeConstructor.construct_yaml_null,
}
_plain_cache: dict[str, Any] = {}


class _NotFast(Exception):
    """The text is outside the fast subset; use the full YAML loader."""


def _plain(value: str) -> Any:
    """A plain scalar as PyYAML resolves it (str/int/float/bool/null; others are not fast)."""
    try:
        return _plain_cache[value]
    except KeyError:
        pass
    if ": " in value or value.endswith(":") or " #" in value:
        raise _NotFast
    tag = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))
    if tag == "tag:yaml.org,2002:str":
        result: Any = value
    elif tag in _FAST_TAGS:
        result = _FAST_TAGS[tag](_SCALAR_CONSTRUCTOR, yaml.ScalarNode(tag, value))
    else:  # timestamps, merge keys, '=' ...
        raise _NotFast
    if len(_plain_cache) < 100_000:
        _plain_cache[value] = result
    return result


def _fast_value(m: re.Match[str]) -> Any:
    flow = m.group("flow")
    if flow is not None:
        out: dict[Any, Any] = {}
        body = flow[1:-1]
        if body.strip():
            for item in body.split(","):
                im = _FAST_FLOW_ITEM.match(item)
                if im is None:
                    raise _NotFast
                out[_fast_key(im.group(1))] = _plain(im.group(2))
        return out
    if m.group("dq") is not None:
        return m.group("dq")
    if m.group("sq") is not None:
        return m.group("sq")
    return _plain(m.group("plain").rstrip(" "))


def _fast_key(key: str) -> str:
    value = _plain(key)
    if not isinstance(value, str):  # `1:` or `yes:` keys resolve to int/bool
        raise _NotFast
    return value


def _fast_yaml(text: str) -> Any:
    """Parse `text` if it is inside the fast subset, else None."""
    if not text.isascii() or _FAST_BAD_CHARS.search(text):
        return None
    try:
        return _fast_mappings(text.split("\n"))
    except _NotFast:
        return None


def _fast_mappings(lines: list[str]) -> dict[Any, Any] | None:
    root: dict[Any, Any] = {}
    stack: list[tuple[int, dict[Any, Any]]] = []
    pending: tuple[dict[Any, Any], Any, int] | None = None  # a `key:` that may open a block
    match = _FAST_LINE.match
    for number, line in enumerate(lines):
        stripped = line.lstrip(" ")
        if not stripped or stripped[0] == "#":
            continue
        if number == 0 and line.rstrip(" ") == "---":
            continue
        m = match(line)
        if m is None or len(m.group("key") or m.group("qkey") or "") > 1000:
            raise _NotFast
        indent = len(m.group("indent"))
        if pending is not None:
            parent, pkey, pindent = pending
            if indent > pindent:
                child: dict[Any, Any] = {}
                parent[pkey] = child
                stack.append((indent, child))
            pending = None
        elif stack and indent > stack[-1][0]:
            raise _NotFast  # continuation of a multi-line scalar, or bad indentation
        if not stack:
            if indent:
                raise _NotFast
            stack.append((0, root))
        while indent < stack[-1][0]:
            stack.pop()
            if not stack:
                raise _NotFast
        if indent != stack[-1][0]:
            raise _NotFast
        mapping = stack[-1][1]
        key = m.group("qkey") if m.group("qkey") is not None else _fast_key(m.group("key"))
        if m.group("flow") is None and m.group("dq") is None and m.group("sq") is None and m.group("plain") is None:
            mapping[key] = None
            pending = (mapping, key, indent)
        else:
            mapping[key] = _fast_value(m)
    return root if stack else None


def _yaml_error_sentence(path: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path} line {mark.line + 1}" if mark is not None else path
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return f"{where} is not valid YAML: {detail}; fix the syntax (indentation, quotes, a truncated file?)."


# --------------------------------------------------------------------------- inventory model


class _Group:
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


class _Host:
    __slots__ = ("name", "vals", "srcs", "groups")

    def __init__(self, name: str) -> None:
        self.name = name
        self.vals: dict[str, Any] = {}
        self.srcs: dict[str, str] = {}
        self.groups: dict[str, None] = {}  # direct groups, ordered set


class _Data:
    """Mirror of ansible.inventory.data.InventoryData: only what affects resolution."""

    def __init__(self) -> None:
        self.groups: dict[str, _Group] = {"all": _Group("all"), "ungrouped": _Group("ungrouped")}
        self.hosts: dict[str, _Host] = {}
        self.warnings: list[str] = []
        self.add_child("all", "ungrouped", "<implicit>")

    def add_group(self, name: Any, path: str) -> str:
        if not name or not isinstance(name, str):
            raise InventoryError(f"{path}: group name {name!r} is not a non-empty string; quote it or rename the group.")
        if name not in self.groups:
            self.groups[name] = _Group(name)
        return name

    def add_host(self, name: Any, group: str | None, port: int | None, path: str) -> None:
        if not name or not isinstance(name, str):
            raise InventoryError(f"{path}: host name {name!r} is not a non-empty string; quote it or rename the host.")
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = _Host(name)
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
        ancestors = _Ancestors(self.groups)
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


class _Ancestors:
    """Memoised ancestor closures; raises on group loops (Ansible refuses them too)."""

    def __init__(self, groups: dict[str, _Group]) -> None:
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


def _depths(groups: dict[str, _Group]) -> dict[str, int]:
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


# --------------------------------------------------------------------------- host patterns


def _expand_range(pattern: str, path: str) -> list[str]:
    """plugins.inventory.expand_hostname_range: `db[01:10:2]-[a:c]`, left to right."""
    head, _, rest = pattern.partition("[")
    nrange, sep, tail = rest.partition("]")
    if not sep:
        raise InventoryError(f"{path}: host pattern {pattern!r} has an unclosed '['; write it like web[01:10].")
    bounds = nrange.split(":")
    if len(bounds) not in (2, 3):
        raise InventoryError(f"{path}: host range in {pattern!r} must be begin:end or begin:end:step.")
    beg, end = bounds[0] or "0", bounds[1]
    step = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise InventoryError(f"{path}: host range in {pattern!r} must specify an end value.")
    width = len(beg) if beg[0] == "0" and len(beg) > 1 else 0
    if width and width != len(end):
        raise InventoryError(f"{path}: host range in {pattern!r} must use equal-length begin and end (e.g. 01:10).")
    letters = string.ascii_letters
    try:
        if beg in letters and end in letters and len(beg) == 1 and len(end) == 1:
            i_beg, i_end = letters.index(beg), letters.index(end)
            if i_beg > i_end:
                raise InventoryError(f"{path}: host range in {pattern!r} must have begin <= end.")
            seq: Iterable[Any] = letters[i_beg:i_end + 1:int(step)]
        else:
            seq = range(int(beg), int(end) + 1, int(step))
    except ValueError:
        raise InventoryError(f"{path}: host range in {pattern!r} is not numeric or single letters; fix the range.") from None
    out: list[str] = []
    for item in seq:
        name = f"{head}{str(item).zfill(width) if width else item}{tail}"
        out.extend(_expand_range(name, path) if "[" in name else (name,))
    return out


def _expand_hostpattern(pattern: Any, path: str, ini: bool) -> tuple[list[str], int | None]:
    """BaseInventoryPlugin._expand_hostpattern (+ the INI plugin's extra checks)."""
    if not isinstance(pattern, str):
        raise InventoryError(f"{path}: host pattern {pattern!r} must be a string; enclose it in quotes.")
    port: int | None = None
    host = pattern
    if _PORT_SUFFIX.search(pattern):
        # Ansible's own address grammar (IPv6, [host]:port, host:port). Only a trailing
        # `:digits` can yield a port; without one parse_address returns the pattern unchanged
        # (or fails, which Ansible also maps to the unchanged pattern), so it is skipped -
        # importing it costs ~60 ms.
        from ansible.parsing.utils.addresses import parse_address

        try:
            host, port = parse_address(pattern, allow_ranges=True)
        except Exception:  # noqa: BLE001 - Ansible treats any failure as "not an address"
            host, port = pattern, None
    names = _expand_range(host, path) if "[" in host else [host]
    if ini:
        if pattern.strip().endswith(":") and port is None:
            raise InventoryError(
                f"{path}: invalid host pattern {pattern!r}: a trailing ':' is reserved for a port number."
            )
        if any(n.strip() == "---" for n in names):
            raise InventoryError(f"{path}: host pattern '---' looks like a YAML document start; is this file YAML?")
    return names, port


# --------------------------------------------------------------------------- YAML inventory


def _parse_yaml_inventory(inv: _Data, data: dict[Any, Any], path: str) -> None:
    if data.get("plugin"):
        raise InventoryError(
            f"{path} is an inventory plugin configuration (plugin: {data['plugin']}), not a static "
            "inventory; export it with `ansible-inventory -i FILE --list` and load that JSON instead."
        )
    for group_name, group_data in data.items():
        _parse_yaml_group(inv, group_name, group_data, path)


def _parse_yaml_group(inv: _Data, group: Any, group_data: Any, path: str) -> Any:
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
                f"{path}: the {section!r} entry of group {group!r} must be a mapping, not {_describe(value)}."
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
                names, port = _expand_hostpattern(pattern, path, ini=False)
                _populate_hosts(inv, names, host_vars or {}, group, port, path)
        else:
            inv.warnings.append(
                f"{path}: skipping unexpected key {key!r} in group {group!r}; only vars, children and hosts are valid."
            )
    return group


def _populate_hosts(inv: _Data, names: list[str], variables: Any, group: str, port: int | None, path: str) -> None:
    if not isinstance(variables, dict):
        first = names[0] if names else "(empty host range)"
        raise InventoryError(
            f"{path}: variables of host {first!r} must be a mapping, not {_describe(variables)}."
        )
    for name in names:
        inv.add_host(name, group, port, path)
        for key, value in variables.items():
            inv.set_host_var(name, key, value, path)


# --------------------------------------------------------------------------- INI inventory


def _ini_value(raw: str) -> Any:
    """InventoryModule._parse_value: literal_eval, else the string; then type coercion."""
    if _INI_PLAIN_WORD.match(raw) and raw not in ("True", "False", "None"):
        return raw
    if _INI_PLAIN_INT.match(raw):
        return int(raw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw
    return _ini_coerce(value)


def _ini_coerce(value: Any) -> Any:
    """_parse_recursive_coerce_types_and_tag: containers to list/dict, odd literals to str."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, set)):
        return [_ini_coerce(v) for v in value]
    if isinstance(value, dict):
        return {k: _ini_coerce(v) for k, v in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    return value


def _ini_lines(data: bytes, path: str) -> list[str]:
    """Text lines; like Ansible, undecodable bytes are tolerated in comment lines only."""
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        pass
    lines = []
    for number, line in enumerate(data.splitlines(), 1):
        if line[:1] in (b";", b"#"):
            lines.append("")
            continue
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise InventoryError(f"{path} line {number} is not valid UTF-8 text; save the file as UTF-8.") from None
    return lines


class _IniParser:
    """plugins/inventory/ini.py InventoryModule._parse, line by line."""

    def __init__(self, inv: _Data, path: str) -> None:
        self.inv = inv
        self.path = path
        self.lineno = 0
        self.pending: dict[str, dict[str, Any]] = {}

    def fail(self, message: str) -> InventoryError:
        return InventoryError(f"{self.path} line {self.lineno}: {message}")

    def parse(self, lines: list[str]) -> None:
        inv = self.inv
        groupname, state = "ungrouped", "hosts"
        for self.lineno, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line[0] in _COMMENT_MARKERS:
                continue
            if line[0] == "[":
                m = _INI_SECTION.match(line)
                if m:
                    groupname, state = self.section(m)
                    continue
                if line.endswith("]"):
                    raise self.fail(f"invalid section entry {line!r}; section names cannot contain spaces or other invalid characters.")
            if state == "hosts":
                self.host_line(line, groupname)
            elif state == "vars":
                if "=" not in line:
                    raise self.fail(f"expected key=value in [{groupname}:vars], got {line!r}.")
                key, value = (part.strip() for part in line.split("=", 1))
                inv.set_group_var(groupname, key, _ini_value(value), self.path)
            else:
                self.child_line(line, groupname)
        for name, decl in self.pending.items():
            self.lineno = decl["line"]
            if decl["state"] == "vars":
                raise self.fail(f"section [{name}:vars] is for group {name!r}, which is never defined; add a [{name}] section.")
            raise self.fail(
                f"section [{decl['parents'][-1]}:children] includes undefined group {name!r}; add a [{name}] section."
            )

    def section(self, m: re.Match[str]) -> tuple[str, str]:
        groupname = m.group(1)
        if _INVALID_GROUP_CHARS.search(groupname):
            self.inv.warnings.append(f"{self.path} line {self.lineno}: group name {groupname!r} has characters Ansible calls invalid (kept as is).")
        state = m.group(2) or "hosts"
        if state not in ("hosts", "children", "vars"):
            raise self.fail(f"section [{m.group(1)}:{state}] has unknown type {state!r}; use :vars or :children.")
        if groupname not in self.inv.groups:
            # [g:vars] alone does not declare g; remember it and complain if never declared.
            if state == "vars" and groupname not in self.pending:
                self.pending[groupname] = {"line": self.lineno, "state": state}
            self.inv.add_group(groupname, self.path)
        decl = self.pending.get(groupname)
        if decl is not None and state != "vars":
            if decl["state"] == "children":
                self.add_pending_children(groupname)
            else:
                del self.pending[groupname]
        return groupname, state

    def add_pending_children(self, group: str) -> None:
        for parent in self.pending[group]["parents"]:
            self.inv.add_child(parent, group, self.path)
            decl = self.pending.get(parent)
            if decl is not None and decl["state"] == "children":
                self.add_pending_children(parent)
        del self.pending[group]

    def host_line(self, line: str, groupname: str) -> None:
        if line.isascii() and not _SHLEX_NEEDED.search(line):
            tokens = line.split()
        else:
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError as exc:
                raise self.fail(f"cannot parse host definition {line!r}: {exc}; check its quotes.") from None
        if not tokens:
            raise self.fail(f"cannot parse host definition {line!r}.")
        names, port = _expand_hostpattern(tokens[0], f"{self.path} line {self.lineno}", ini=True)
        variables: dict[str, Any] = {}
        for token in tokens[1:]:
            if "=" not in token:
                raise self.fail(f"expected key=value host variable after {tokens[0]!r}, got {token!r}.")
            key, value = token.split("=", 1)
            variables[key] = _ini_value(value)
        _populate_hosts(self.inv, names, variables, groupname, port, self.path)

    def child_line(self, line: str, groupname: str) -> None:
        m = _INI_GROUP_NAME.match(line)
        if not m:
            raise self.fail(f"expected a group name in [{groupname}:children], got {line!r}.")
        child = m.group(1)
        if child in self.inv.groups:
            self.inv.add_child(groupname, child, self.path)
        elif child in self.pending:
            self.pending[child]["parents"].append(groupname)
        else:
            self.pending[child] = {"line": self.lineno, "state": "children", "parents": [groupname]}


def _only_comments(text: str) -> bool:
    return all(not s or s[0] in _COMMENT_MARKERS for s in (line.strip() for line in text.splitlines()))


# --------------------------------------------------------------------------- sources


def _parse_inventory_file(inv: _Data, reader: _Reader, path: str) -> None:
    """Choose the plugin the way Ansible's enabled-plugin order does (yaml before ini)."""
    ext = os.path.splitext(path)[1]
    if ext == ".toml":
        raise InventoryError(f"{path} is a TOML inventory, which vllm-fleet cannot resolve; convert it to YAML or INI.")
    data = reader.read_bytes(path)
    if os.access(path, os.X_OK) and data.startswith(b"#!"):
        raise InventoryError(
            f"{path} is an executable inventory script; run `ansible-inventory -i {path} --list` and load that JSON instead."
        )
    if b"\x00" in data:
        raise InventoryError(f"{path} is a binary file, not a YAML/INI inventory; remove it or point -i elsewhere.")
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and (not text.strip() or _only_comments(text)):
        raise InventoryError(f"inventory file {path} is empty; add hosts or remove it from the inventory sources.")
    yaml_error: InventoryError | None = None
    if text is not None and ext in _YAML_INVENTORY_EXTENSIONS:
        try:
            parsed = _parse_yaml_text(text, path)
        except InventoryError as exc:
            parsed, yaml_error = None, exc
        if isinstance(parsed, dict) and parsed:
            _parse_yaml_inventory(inv, parsed, path)
            return
        if yaml_error is None and not parsed:
            raise InventoryError(f"inventory file {path} is empty (its YAML holds no groups); add groups and hosts or remove it.")
        if yaml_error is None:
            yaml_error = InventoryError(
                f"{path} must be a YAML mapping of group names at the top level, not {_describe(parsed)}."
            )
    # The ini plugin accepts any file; Ansible falls back to it when YAML fails.
    try:
        parser = _IniParser(inv, path)
        try:
            parser.parse(_ini_lines(data, path))
        except (RecursionError, MemoryError, TypeError, ValueError) as exc:
            # ast.literal_eval failures other than ValueError/SyntaxError fail the ini plugin too
            raise parser.fail(f"cannot parse this line: {exc}; simplify or quote the value.") from None
    except InventoryError as ini_error:
        if yaml_error is None:
            raise
        if ext:  # .yml/.yaml/.json: the YAML problem is the one to report
            raise yaml_error from None
        raise InventoryError(
            f"{path} is neither a YAML inventory ({_without_path(yaml_error, path)}) "
            f"nor an INI inventory ({_without_path(ini_error, path)})."
        ) from None


def _without_path(error: InventoryError, path: str) -> str:
    """An error sentence minus its leading path and trailing period, for nesting."""
    text = str(error)
    if text.startswith(path):
        text = text[len(path):].lstrip(": ")
    return text.rstrip(".")


def _parse_source(inv: _Data, reader: _Reader, path: str) -> int:
    """Parse a file or (recursively) a directory; returns how many inventory files it held."""
    if os.path.isdir(path):
        try:
            entries = sorted(os.listdir(path))
        except OSError as exc:
            raise InventoryError(f"cannot list inventory directory {path}: {exc.strerror}; check its permissions.") from None
        return sum(
            _parse_source(inv, reader, os.path.join(path, entry))
            for entry in entries
            if not _IGNORED_ENTRY.search(entry)
        )
    if os.path.exists(path):
        _parse_inventory_file(inv, reader, path)
        return 1
    raise InventoryError(f"inventory source {path} does not exist; check the -i path.")


class _VarsDir:
    """host_group_vars for one `group_vars` or `host_vars` dir; listed once, not stat'ed per host."""

    def __init__(self, path: str, kind: str, reader: _Reader) -> None:
        self.path = path
        self.kind = kind
        self.reader = reader
        self.names: frozenset[str] = frozenset()
        if os.path.isdir(path):
            try:
                self.names = frozenset(os.listdir(path))
            except OSError as exc:
                raise InventoryError(f"cannot list {path}: {exc.strerror}; check its permissions.") from None
        self._cache: dict[str, tuple[dict[str, Any], dict[str, str]] | None] = {}

    def vars_for(self, entity: str) -> tuple[dict[str, Any], dict[str, str]] | None:
        if not self.names or entity.startswith(os.path.sep):
            return None
        if entity in self._cache:
            return self._cache[entity]
        result = None
        files = self._find(entity)
        if files:
            vals: dict[str, Any] = {}
            srcs: dict[str, str] = {}
            for f in files:
                data = self.reader.load_vars_file(f, self.kind)
                vals.update(data)
                srcs.update(dict.fromkeys(data, f))
            result = (vals, srcs)
        self._cache[entity] = result
        return result

    def _find(self, entity: str) -> list[str]:
        """DataLoader.find_vars_files: the first existing NAME[.ext] wins; a dir is walked."""
        for ext in _VARS_EXTENSIONS:
            candidate = entity + ext
            if "/" not in candidate and candidate not in self.names:
                continue
            full = os.path.join(self.path, candidate)
            if not os.path.exists(full):
                continue
            return _walk_vars_dir(full) if os.path.isdir(full) else [full]
        return []


def _walk_vars_dir(path: str) -> list[str]:
    """DataLoader._get_dir_vars_files: sorted, skip hidden and '~', recurse extension-less dirs."""
    found: list[str] = []
    try:
        entries = sorted(os.listdir(path))
    except OSError as exc:
        raise InventoryError(f"cannot list {path}: {exc.strerror}; check its permissions.") from None
    for name in entries:
        if name.startswith(".") or name.endswith("~"):
            continue
        ext = os.path.splitext(name)[1]
        full = os.path.join(path, name)
        if os.path.isdir(full):
            if not ext:
                found.extend(_walk_vars_dir(full))
        elif os.path.isfile(full) and ext in _VARS_EXTENSIONS:
            found.append(full)
    return found


# --------------------------------------------------------------------------- resolution


def _resolve(inv: _Data, group_dirs: list[_VarsDir], host_dirs: list[_VarsDir]) -> dict[str, ResolvedHost]:
    groups = inv.groups
    _depths(groups)  # loops first: reconcile's closures assume a DAG
    inv.reconcile()
    depth = _depths(groups)
    ancestors = _Ancestors(groups)
    all_group = groups["all"]
    chains: dict[frozenset[str], tuple[dict[str, Any], dict[str, str], list[str]]] = {}
    resolved: dict[str, ResolvedHost] = {}
    for host in inv.hosts.values():
        closure = ancestors.of_direct(tuple(host.groups))  # includes 'all' after reconcile
        chain = chains.get(closure)
        if chain is None:
            chain = chains[closure] = _merge_groups(closure, groups, depth, all_group, group_dirs)
        gvals, gsrcs, group_list = chain
        vals = gvals | host.vals
        srcs = gsrcs | host.srcs
        for vdir in host_dirs:
            layer = vdir.vars_for(host.name)
            if layer is not None:
                vals.update(layer[0])
                srcs.update(layer[1])
        if not _INTERNAL_STATIC_VARS.isdisjoint(vals):
            for key in _INTERNAL_STATIC_VARS.intersection(vals):
                del vals[key]
                srcs.pop(key, None)
        resolved[host.name] = ResolvedHost(host.name, group_list, vals, srcs)
    return resolved


def _merge_groups(
    closure: frozenset[str],
    groups: dict[str, _Group],
    depth: dict[str, int],
    all_group: _Group,
    group_dirs: list[_VarsDir],
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """VariableManager.get_vars for the group part, shared by every host with this closure."""
    ordered = sorted(
        (groups[g] for g in closure if g != "all"), key=lambda g: (depth[g.name], g.priority, g.name)
    )
    vals: dict[str, Any] = dict(all_group.vals)
    srcs: dict[str, str] = dict(all_group.srcs)
    for g in ordered:  # groups_inventory
        vals.update(g.vals)
        srcs.update(g.srcs)
    names = ["all"] + [g.name for g in ordered]
    for name_set in (names[:1], names[1:]):  # all_plugins_inventory, then groups_plugins_inventory
        for vdir in group_dirs:
            for name in name_set:
                layer = vdir.vars_for(name)
                if layer is not None:
                    vals.update(layer[0])
                    srcs.update(layer[1])
    return vals, srcs, sorted(closure)


def _vars_dirs(sources: list[str], reader: _Reader) -> tuple[list[_VarsDir], list[_VarsDir]]:
    """get_vars_from_inventory_sources: a file source contributes its directory."""
    group_dirs, host_dirs = [], []
    for src in sources:
        base = src if os.path.isdir(src) else os.path.dirname(src)
        group_dirs.append(_VarsDir(os.path.join(base, "group_vars"), "group_vars", reader))
        host_dirs.append(_VarsDir(os.path.join(base, "host_vars"), "host_vars", reader))
    return group_dirs, host_dirs


def load_inventory(paths: list[str | Path]) -> Inventory:
    """Resolve every host of the given inventory sources (files or directories, like `-i`)."""
    if not paths:
        raise InventoryError("no inventory source given; pass at least one file or directory.")
    sources = [os.path.normpath(os.fspath(p)) for p in paths]
    reader = _Reader()
    inv = _Data()
    try:
        for src in sources:
            if not _parse_source(inv, reader, src):
                raise InventoryError(
                    f"inventory directory {src} contains no inventory files (only group_vars/host_vars or "
                    "ignored names); add a hosts file or point -i at the right directory."
                )
        group_dirs, host_dirs = _vars_dirs(sources, reader)
        hosts = _resolve(inv, group_dirs, host_dirs)
    except RecursionError:
        raise InventoryError(
            f"the inventory {', '.join(sources)} nests groups too deeply to resolve; flatten the group tree."
        ) from None
    return Inventory(hosts=hosts, files=list(reader.files), warnings=inv.warnings)


def load_inventory_json(data: dict) -> Inventory:
    """Resolve the output of `ansible-inventory --list` (or `--list --export`)."""
    if not isinstance(data, dict):
        raise InventoryError(f"{JSON_SOURCE} must be a JSON object as written by `ansible-inventory --list`, not {_describe(data)}.")
    meta = data.get("_meta") or {}
    hostvars = meta.get("hostvars") or {} if isinstance(meta, dict) else {}
    if not isinstance(hostvars, dict):
        raise InventoryError(f"{JSON_SOURCE}: _meta.hostvars must be an object of host name -> variables.")
    inv = _Data()
    for name, body in data.items():
        if name == "_meta":
            continue
        if not isinstance(body, dict):
            raise InventoryError(f"{JSON_SOURCE}: group {name!r} must be an object with hosts/children/vars, not {_describe(body)}.")
        inv.add_group(name, JSON_SOURCE)
    for name, body in data.items():
        if name == "_meta":
            continue
        for host in _json_list(body, "hosts", name):
            inv.add_host(host, name, None, JSON_SOURCE)
        group_vars = body.get("vars") or {}
        if not isinstance(group_vars, dict):
            raise InventoryError(f"{JSON_SOURCE}: vars of group {name!r} must be an object of variables.")
        for key, value in group_vars.items():
            inv.set_group_var(name, key, _unwrap(value), JSON_SOURCE)
    for name, body in data.items():
        if name != "_meta":
            for child in _json_list(body, "children", name):
                inv.add_group(child, JSON_SOURCE)
                inv.add_child(name, child, JSON_SOURCE)
    for host, variables in hostvars.items():
        if not isinstance(variables, dict):
            raise InventoryError(f"{JSON_SOURCE}: _meta.hostvars[{host!r}] must be an object of variables.")
        inv.add_host(host, None, None, JSON_SOURCE)
        for key, value in variables.items():
            inv.set_host_var(host, key, _unwrap(value), JSON_SOURCE)
    return Inventory(hosts=_resolve(inv, [], []), files=[], warnings=inv.warnings)


def _json_list(body: dict[str, Any], key: str, group: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list):
        raise InventoryError(f"{JSON_SOURCE}: {key} of group {group!r} must be a list of names.")
    return value


def _unwrap(value: Any) -> Any:
    """Decode the `__ansible_vault`/`__ansible_unsafe` wrappers of the legacy JSON profile."""
    if isinstance(value, dict):
        marked = _json_markers(value)
        if marked is not value:
            return marked
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


# --------------------------------------------------------------------------- locate


def locate(path: str, var_name: str, host_or_group: str | None = None) -> int | None:
    """1-based line where `var_name` is set in a YAML or INI file, or None if not found.

    For a group_vars/host_vars file the top-level key is searched. For an inventory file,
    pass `host_or_group` to find the var under that host or group (INI: `[g:vars]` or the
    host's line); without it the first definition anywhere in the file is returned.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    root = None
    if os.path.splitext(path)[1] != ".ini":
        try:
            root = yaml.compose(text, Loader=_InventoryLoader)
        except yaml.YAMLError:
            root = None
    if isinstance(root, yaml.MappingNode):
        return _locate_yaml(root, var_name, host_or_group)
    return _locate_ini(text, var_name, host_or_group)


def _key_node(mapping: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(mapping, yaml.MappingNode):
        return None
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _locate_yaml(root: yaml.MappingNode, var_name: str, owner: str | None) -> int | None:
    """Inventory structure first when an owner is named; a vars file's top-level key otherwise."""
    top = _key_node(root, var_name)
    if owner is None and top:
        return top[0].start_mark.line + 1
    for line in _yaml_inventory_hits(root, var_name, owner, depth=0):
        return line
    return top[0].start_mark.line + 1 if top else None


def _yaml_inventory_hits(groups: yaml.Node, var_name: str, owner: str | None, depth: int) -> Iterable[int]:
    """Walk a YAML inventory (group -> vars/hosts/children) yielding lines that set var_name."""
    if not isinstance(groups, yaml.MappingNode) or depth > 64:
        return
    for gkey, gbody in groups.value:
        group = gkey.value if isinstance(gkey, yaml.ScalarNode) else None
        group_vars = _key_node(gbody, "vars")
        if owner in (None, group) and group_vars:
            hit = _key_node(group_vars[1], var_name)
            if hit:
                yield hit[0].start_mark.line + 1
        hosts = _key_node(gbody, "hosts")
        if hosts and isinstance(hosts[1], yaml.MappingNode):
            for hkey, hbody in hosts[1].value:
                names = _pattern_names(hkey.value) if isinstance(hkey, yaml.ScalarNode) else []
                if owner is None or owner in names:
                    hit = _key_node(hbody, var_name)
                    if hit:
                        yield hit[0].start_mark.line + 1
        children = _key_node(gbody, "children")
        if children:
            yield from _yaml_inventory_hits(children[1], var_name, owner, depth + 1)


def _pattern_names(pattern: str) -> list[str]:
    try:
        return _expand_hostpattern(pattern, "", ini=False)[0]
    except InventoryError:
        return [pattern]


def _locate_ini(text: str, var_name: str, owner: str | None) -> int | None:
    group, state = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in _COMMENT_MARKERS:
            continue
        m = _INI_SECTION.match(line)
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
