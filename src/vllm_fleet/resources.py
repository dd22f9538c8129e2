"""The package's own data files (catalogue, release table, schemas), read through
importlib.resources so that they are found wherever the package is installed."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import yaml

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader


def data_yaml(name: str) -> Any:
    """A YAML file of vllm_fleet/data/."""
    return yaml.load((files("vllm_fleet") / "data" / name).read_text(encoding="utf-8"), Loader=_Loader)


def schema_json(name: str) -> dict[str, Any]:
    """A JSON Schema of vllm_fleet/schemas/."""
    return json.loads((files("vllm_fleet") / "schemas" / name).read_text(encoding="utf-8"))
