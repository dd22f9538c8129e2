"""The `ini` inventory plugin (plugins/inventory/ini.py), line by line: `[g]`, `[g:vars]` and
`[g:children]` sections with forward references, `host:port`, and values parsed by
`ast.literal_eval` after `shlex` (so `a=yes` is the string "yes", `b=True` is the boolean,
`c='1'` is the *integer* 1 because shlex has already eaten the quotes)."""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from typing import Any

from vllm_fleet.inventory.data import Data, populate_hosts
from vllm_fleet.inventory.model import InventoryError
from vllm_fleet.inventory.ranges import expand_hostpattern

# C.INVALID_VARIABLE_NAMES. The INI plugin calls inventory.group.to_safe_group_name without
# force, and TRANSFORM_INVALID_GROUP_CHARS defaults to 'never': names are kept, with a warning.
_INVALID_GROUP_CHARS = re.compile(r"^[\d\W]|[^\w]")
INI_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:\#.*)?$")
_INI_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:\#.*)?$")
# Lines free of these characters split exactly like shlex.split(comments=True): shlex only
# treats space/tab/CR/LF as separators, str.split() also \x0b\x0c\x1c-\x1f.
_SHLEX_NEEDED = re.compile(r"[\"'\\#\x0b\x0c\x1c-\x1f]")
# INI values that ast.literal_eval is certain to reject (a bare name, dotted/dashed words), or
# that are plain decimal ints: skipping literal_eval for them is the common-case speed-up.
_INI_PLAIN_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_INI_PLAIN_INT = re.compile(r"(?:0|[1-9][0-9]*)\Z")
COMMENT_MARKERS = (";", "#")


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


def ini_lines(data: bytes, path: str) -> list[str]:
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


class IniParser:
    """plugins/inventory/ini.py InventoryModule._parse, line by line."""

    def __init__(self, inv: Data, path: str) -> None:
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
            if not line or line[0] in COMMENT_MARKERS:
                continue
            if line[0] == "[":
                m = INI_SECTION.match(line)
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
        names, port = expand_hostpattern(tokens[0], f"{self.path} line {self.lineno}", ini=True)
        variables: dict[str, Any] = {}
        for token in tokens[1:]:
            if "=" not in token:
                raise self.fail(f"expected key=value host variable after {tokens[0]!r}, got {token!r}.")
            key, value = token.split("=", 1)
            variables[key] = _ini_value(value)
        populate_hosts(self.inv, names, variables, groupname, port, self.path)

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


def only_comments(text: str) -> bool:
    return all(not s or s[0] in COMMENT_MARKERS for s in (line.strip() for line in text.splitlines()))
