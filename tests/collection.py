"""Import the repository's collection plugins (plugins/*) the way Ansible does: through the
collection loader, as ansible_collections.vllm_fleet.fleet.plugins.<kind>.<name>."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / "collections"


def plugin(kind: str, name: str) -> ModuleType:
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    finder = _AnsibleCollectionFinder(paths=[str(COLLECTIONS)])
    finder._install()
    return importlib.import_module(f"ansible_collections.vllm_fleet.fleet.plugins.{kind}.{name}")
