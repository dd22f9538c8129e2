"""The lab's record of what `lab up` made (state.json in the lab dir), read by status and tests."""

from __future__ import annotations

import json
from typing import Any

from .config import LabPaths


def load(paths: LabPaths) -> dict[str, Any]:
    try:
        return json.loads(paths.state.read_text())
    except (OSError, ValueError):
        return {}


def save(paths: LabPaths, state: dict[str, Any]) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(paths.state)
