"""Reading YAML/JSON text as Ansible's DataLoader does: JSON first, then YAML with Ansible's tags
(`!vault`, `!unsafe`, two python/* tags), through the fast path when the text allows; and the
file reader that records every file read and caches vars files.

Two things Ansible's loader does that lint must not: decrypt (a whole file encrypted with
`ansible-vault` is recorded as encrypted, its variables unknown) and expand aliases without
bound (PyYAML shares an aliased value, but everything that walks the result - JSON, the
schema, a signature - expands it, so a 1 KB "billion laughs" file would never finish).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from vllm_fleet.inventory.model import InventoryError, UnsafeText, VaultValue, describe
from vllm_fleet.inventory.yaml_fast import fast_yaml

try:
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _BaseLoader = yaml.SafeLoader


class InventoryLoader(_BaseLoader):  # type: ignore[misc, valid-type]
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
    value = loader.construct_object(copied, deep=True)
    return UnsafeText(value) if type(value) is str else value


InventoryLoader.add_constructor("!vault", _construct_vault)
InventoryLoader.add_constructor("!vault-encrypted", _construct_vault)
InventoryLoader.add_constructor("!unsafe", _construct_unsafe)
# AnsibleConstructor accepts these two python/* tags; SafeLoader alone would reject them.
InventoryLoader.add_constructor(
    "tag:yaml.org,2002:python/unicode", yaml.constructor.SafeConstructor.construct_yaml_str
)
InventoryLoader.add_constructor(
    "tag:yaml.org,2002:python/dict", yaml.constructor.SafeConstructor.construct_yaml_map
)


def json_markers(obj: dict[str, Any]) -> Any:
    """The legacy JSON profile ansible-inventory writes: unsafe strings and vault blobs."""
    if len(obj) == 1:
        if "__ansible_unsafe" in obj and isinstance(obj["__ansible_unsafe"], str):
            return UnsafeText(obj["__ansible_unsafe"])
        if "__ansible_vault" in obj and isinstance(obj["__ansible_vault"], str):
            return VaultValue(obj["__ansible_vault"])
    return obj


# ansible.parsing.vault.is_encrypted: a vault file starts with this header, nothing before it.
VAULT_HEADER = b"$ANSIBLE_VAULT"
# Aliases may expand a document to this many values, or 100 times its own size if that is
# more: generous for anchors reused across a big inventory, far below a "billion laughs".
_EXPANSION_FLOOR = 1_000_000
_EXPANSION_RATIO = 100


def is_vault_encrypted(data: bytes) -> bool:
    return data.startswith(VAULT_HEADER)


class Reader:
    """Reads and caches files, recording each one read (for `Inventory.files`)."""

    def __init__(self) -> None:
        self.files: dict[str, None] = {}  # ordered set
        self.encrypted: dict[str, None] = {}  # ordered set of vault-encrypted files met
        self._vars_cache: dict[str, dict[str, Any] | None] = {}

    def read_bytes(self, path: str) -> bytes:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise InventoryError(f"cannot read {path}: {exc.strerror or exc}; check the path and its permissions.") from None
        self.files[path] = None
        return data

    def load_vars_file(self, path: str, kind: str) -> dict[str, Any] | None:
        """A group_vars/host_vars file's mapping; empty files are no vars, as in Ansible.

        None for a vault-encrypted file: it sets variables nobody without the password can name.
        """
        if path in self._vars_cache:
            return self._vars_cache[path]
        raw = self.read_bytes(path)
        if is_vault_encrypted(raw):
            self.encrypted[path] = None
            self._vars_cache[path] = None
            return None
        text = decode(raw, path)
        data = parse_yaml_text(text, path)
        if not data:  # None, {}, [], "" ...: host_group_vars skips falsy data
            data = {}
        elif not isinstance(data, dict):
            raise InventoryError(
                f"{kind} file {path} must contain a mapping of variable names to values at the "
                f"top level, but it contains {describe(data)}; turn it into `name: value` lines."
            )
        self._vars_cache[path] = data
        return data


def decode(data: bytes, path: str) -> str:
    if b"\x00" in data:
        raise InventoryError(f"{path} is a binary file, not a YAML/INI text file; remove it or point -i elsewhere.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InventoryError(
            f"{path} line {line} is not valid UTF-8 text (is it a binary file?); save it as UTF-8 or remove it."
        ) from None


def parse_yaml_text(text: str, path: str) -> Any:
    """JSON first, then YAML, like ansible.parsing.utils.yaml.from_yaml."""
    head = text.lstrip()[:1]
    if head in ("{", "["):
        try:
            return json.loads(text, object_hook=json_markers)
        except (ValueError, RecursionError):
            pass
    fast = fast_yaml(text)
    if fast is not None:
        return fast
    try:
        data = yaml.load(text, Loader=InventoryLoader)
    except yaml.YAMLError as exc:
        raise InventoryError(yaml_error_sentence(path, exc)) from None
    except RecursionError:
        raise InventoryError(f"{path} is nested too deeply to parse; flatten it.") from None
    except Exception as exc:  # noqa: BLE001 - e.g. `!!int abc` raises ValueError inside PyYAML
        raise InventoryError(f"{path} has a value YAML cannot build: {exc}; fix or quote it.") from None
    if "*" in text:  # no alias without a '*': the common case skips the walk
        _check_alias_expansion(data, path)
    return data


def _check_alias_expansion(data: Any, path: str) -> None:
    """Refuse a document whose aliases expand it beyond any real inventory, or into itself.

    Sizes are counted on the shared structure PyYAML built (each distinct container once,
    memoised by identity), so the check is linear in the file however large the expansion.
    """
    expanded: dict[int, int] = {}   # id(container) -> values it expands to, itself included
    open_ids: set[int] = set()       # containers being counted: meeting one again is a cycle
    distinct = 0
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        obj, children_done = stack.pop()
        children = list(obj.values()) if isinstance(obj, dict) else obj if isinstance(obj, list) else None
        if children is None:
            continue
        key = id(obj)
        if children_done:
            open_ids.discard(key)
            expanded[key] = 1 + sum(expanded.get(id(c), 1) for c in children)
            continue
        if key in expanded:
            continue
        if key in open_ids:
            raise InventoryError(
                f"{path} has a YAML alias inside the value it refers to (a value that contains itself), "
                "which Ansible cannot expand either; replace the alias with a plain value."
            )
        open_ids.add(key)
        distinct += 1 + len(children)
        stack.append((obj, True))
        stack.extend((c, False) for c in children if isinstance(c, (dict, list)) and id(c) not in expanded)
    total = expanded.get(id(data), 1)
    limit = max(_EXPANSION_FLOOR, _EXPANSION_RATIO * distinct)
    if total > limit:
        raise InventoryError(
            f"{path} uses YAML aliases that expand its {distinct:,} values to {total:,} "
            f"(more than {limit:,}: a \"billion laughs\" document?); lint refuses to expand it. "
            "Replace the nested aliases with plain values."
        )


def yaml_error_sentence(path: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path} line {mark.line + 1}" if mark is not None else path
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return f"{where} is not valid YAML: {detail}; fix the syntax (indentation, quotes, a truncated file?)."
