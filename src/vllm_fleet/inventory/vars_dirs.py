"""`host_group_vars` (plugins/vars/host_group_vars.py + DataLoader.find_vars_files): only the
`group_vars/` and `host_vars/` next to each `-i` source; the first of `NAME`, `NAME.yml`,
`NAME.yaml`, `NAME.json` that exists wins (a directory `NAME/` is read recursively in sorted
order; `web.yaml` is ignored when `web.yml` exists).

Play-adjacent vars (a `group_vars/` in the current directory, which `ansible-inventory` also
reads) are deliberately not modelled: the lint checks the inventory, not the caller's cwd.
"""

from __future__ import annotations

import os
from typing import Any

from vllm_fleet.inventory.model import InventoryError
from vllm_fleet.inventory.yaml_read import Reader

# C.YAML_FILENAME_EXTENSIONS with '' first: find_vars_files tries the bare name first.
_VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")

# One entity's variables from one dir: values, var -> file, and the vault-encrypted files among
# them (Ansible's documented layout: group_vars/<g>/vars.yml next to an encrypted vault.yml).
Layer = tuple[dict[str, Any], dict[str, str], tuple[str, ...]]


class VarsDir:
    """host_group_vars for one `group_vars` or `host_vars` dir; listed once, not stat'ed per host."""

    def __init__(self, path: str, kind: str, reader: Reader) -> None:
        self.path = path
        self.kind = kind
        self.reader = reader
        self.names: frozenset[str] = frozenset()
        if os.path.isdir(path):
            try:
                self.names = frozenset(os.listdir(path))
            except OSError as exc:
                raise InventoryError(f"cannot list {path}: {exc.strerror}; check its permissions.") from None
        self._cache: dict[str, Layer | None] = {}

    def vars_for(self, entity: str) -> Layer | None:
        if not self.names or entity.startswith(os.path.sep):
            return None
        if entity in self._cache:
            return self._cache[entity]
        result = None
        files = self._find(entity)
        if files:
            vals: dict[str, Any] = {}
            srcs: dict[str, str] = {}
            encrypted: list[str] = []
            for f in files:
                data = self.reader.load_vars_file(f, self.kind)
                if data is None:
                    encrypted.append(f)
                    continue
                vals.update(data)
                srcs.update(dict.fromkeys(data, f))
            result = (vals, srcs, tuple(encrypted))
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



def vars_dirs(sources: list[str], reader: Reader) -> tuple[list[VarsDir], list[VarsDir]]:
    """get_vars_from_inventory_sources: a file source contributes its directory."""
    group_dirs, host_dirs = [], []
    for src in sources:
        base = src if os.path.isdir(src) else os.path.dirname(src)
        group_dirs.append(VarsDir(os.path.join(base, "group_vars"), "group_vars", reader))
        host_dirs.append(VarsDir(os.path.join(base, "host_vars"), "host_vars", reader))
    return group_dirs, host_dirs
