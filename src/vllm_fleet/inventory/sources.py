"""Inventory sources (inventory/manager.py): a directory is read recursively in sorted order,
skipping hidden names, `group_vars`, `host_vars`, `vars_plugins` and the
`INVENTORY_IGNORE_EXTS` suffixes. A file with no extension or `.yml/.yaml/.json` is tried as
YAML first and then as INI (the `yaml` plugin runs before `ini`); any other file is INI.

A file that holds no inventory at all - 0 bytes, only comments, only `---` - is a placeholder:
Ansible reads it as no hosts (its `ini` plugin accepts it), and so does this reader. A whole
file encrypted with ansible-vault is skipped and recorded: without the password nobody can
read its hosts. Scripts and plugin configurations are run through `ansible-inventory` (see
`dynamic`).

`load_inventory` is the entry point: every source parsed, then the vars dirs next to each
source, then precedence.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vllm_fleet.inventory.data import Data
from vllm_fleet.inventory.dynamic import is_plugin_config, is_script, list_source
from vllm_fleet.inventory.ini import IniParser, ini_lines, only_comments
from vllm_fleet.inventory.json_source import add_listing
from vllm_fleet.inventory.model import Inventory, InventoryError, describe
from vllm_fleet.inventory.resolve import resolve
from vllm_fleet.inventory.vars_dirs import vars_dirs
from vllm_fleet.inventory.yaml_inventory import parse_yaml_inventory
from vllm_fleet.inventory.yaml_read import Reader, is_vault_encrypted, parse_yaml_text

# inventory/manager.py IGNORED: always-skipped names plus C.INVENTORY_IGNORE_EXTS
# (REJECT_EXTS + .orig .cfg .retry). Matched against the bare entry name, like Ansible.
_IGNORED_ENTRY = re.compile(
    r"^\.|^host_vars$|^group_vars$|^vars_plugins$"
    r"|(?:\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.cfg|\.retry)$"
)
# The yaml inventory plugin's default `yaml_extensions`; '' (no extension) is accepted too.
_YAML_INVENTORY_EXTENSIONS = frozenset({"", ".yml", ".yaml", ".json"})


class _Walk:
    """What reading the sources found besides groups and hosts."""

    def __init__(self) -> None:
        self.encrypted: list[str] = []  # vault-encrypted inventory files, skipped
        self.dynamic: list[str] = []    # sources read through ansible-inventory


def _parse_inventory_file(inv: Data, reader: Reader, walk: _Walk, path: str) -> None:
    """Choose the plugin the way Ansible's enabled-plugin order does (script, auto, yaml, ini)."""
    ext = os.path.splitext(path)[1]
    if ext == ".toml":
        raise InventoryError(f"{path} is a TOML inventory, which vllm-fleet cannot resolve; convert it to YAML or INI.")
    data = reader.read_bytes(path)
    if is_script(path, data):
        _add_dynamic(inv, walk, path, "an inventory script")
        return
    if is_vault_encrypted(data):
        walk.encrypted.append(path)
        inv.warnings.append(f"{path} is encrypted with ansible-vault: its hosts cannot be read without the password.")
        return
    if b"\x00" in data:
        raise InventoryError(f"{path} is a binary file, not a YAML/INI inventory; remove it or point -i elsewhere.")
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and (not text.strip() or only_comments(text)):
        return  # a placeholder: no hosts, as in Ansible
    yaml_error: InventoryError | None = None
    if text is not None and ext in _YAML_INVENTORY_EXTENSIONS:
        try:
            parsed = parse_yaml_text(text, path)
        except InventoryError as exc:
            parsed, yaml_error = None, exc
        if is_plugin_config(path, parsed):
            _add_dynamic(inv, walk, path, f"an inventory plugin configuration (plugin: {parsed['plugin']})")
            return
        if isinstance(parsed, dict) and parsed.get("plugin"):
            raise InventoryError(
                f"{path} is an inventory plugin configuration (plugin: {parsed['plugin']}), which Ansible runs "
                "only from a file named .yml or .yaml; rename it."
            )
        if isinstance(parsed, dict) and parsed:
            parse_yaml_inventory(inv, parsed, path)
            return
        if yaml_error is None and not parsed:
            return  # only `---`, `{}` or the like: no hosts
        if yaml_error is None:
            yaml_error = InventoryError(
                f"{path} must be a YAML mapping of group names at the top level, not {describe(parsed)}."
            )
    # The ini plugin accepts any file; Ansible falls back to it when YAML fails.
    try:
        parser = IniParser(inv, path)
        try:
            parser.parse(ini_lines(data, path))
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


def _add_dynamic(inv: Data, walk: _Walk, path: str, what: str) -> None:
    add_listing(inv, list_source(path, what), path)
    walk.dynamic.append(path)


def _parse_source(inv: Data, reader: Reader, walk: _Walk, path: str) -> int:
    """Parse a file or (recursively) a directory; returns how many inventory files it held."""
    if os.path.isdir(path):
        try:
            entries = sorted(os.listdir(path))
        except OSError as exc:
            raise InventoryError(f"cannot list inventory directory {path}: {exc.strerror}; check its permissions.") from None
        return sum(
            _parse_source(inv, reader, walk, os.path.join(path, entry))
            for entry in entries
            if not _IGNORED_ENTRY.search(entry)
        )
    if os.path.exists(path):
        _parse_inventory_file(inv, reader, walk, path)
        return 1
    raise InventoryError(f"inventory source {path} does not exist; check the -i path.")


def load_inventory(paths: list[str | Path]) -> Inventory:
    """Resolve every host of the given inventory sources (files or directories, like `-i`)."""
    if not paths:
        raise InventoryError("no inventory source given; pass at least one file or directory.")
    sources = [os.path.normpath(os.fspath(p)) for p in paths]
    reader = Reader()
    inv = Data()
    walk = _Walk()
    try:
        for src in sources:
            if not _parse_source(inv, reader, walk, src):
                raise InventoryError(
                    f"inventory directory {src} contains no inventory files (only group_vars/host_vars or "
                    "ignored names); add a hosts file or point -i at the right directory."
                )
        group_dirs, host_dirs = vars_dirs(sources, reader)
        hosts, resolver = resolve(inv, group_dirs, host_dirs)
    except RecursionError:
        raise InventoryError(
            f"the inventory {', '.join(sources)} nests groups too deeply to resolve; flatten the group tree."
        ) from None
    return Inventory(hosts=hosts, files=list(reader.files), warnings=inv.warnings, sources=sources,
                     encrypted_sources=walk.encrypted, listings=walk.dynamic, outside_all_of=resolver.outside_all)
