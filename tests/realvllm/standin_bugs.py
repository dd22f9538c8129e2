"""Known differences between the vLLM stand-in and real vLLM 0.32.0 (found 2026-11-27).

Real vLLM is the reference, so each is a stand-in bug. A case listed here is marked
xfail(strict=True, raises=KnownStandinBug) and xfails only while its differences are EXACTLY
those recorded in known_standin_diffs.json: a new difference fails outright, and a fixed
stand-in XPASSes, which strict turns into a failure, so the entry gets removed.
Refresh the recorded lines after a stand-in change with VLLM_FLEET_DIFF_DUMP=FILE (writes every
case's differences to FILE) and copy the ones that are still bugs into the JSON file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

KNOWN_DIFFS_FILE = Path(__file__).resolve().parent / "known_standin_diffs.json"
KNOWN_DIFFS: dict[str, list[str]] = json.loads(KNOWN_DIFFS_FILE.read_text())


class KnownStandinBug(AssertionError):
    """The stand-in differs from real vLLM exactly as recorded in known_standin_diffs.json."""


# HTTP cases (test_differential.py): case name (dense model) or "moe:NAME" (MoE model) -> what
# real vLLM does that the stand-in does not.
# Empty: the ten found 2026-11-27 (response fields, stream chunks, max_tokens padding,
# /v1/completions fields, 404 wording, /health content-type) were fixed in the stand-in.
STANDIN_BUGS: dict[str, str] = {}

# `vllm serve` argument errors (test_cli_differential.py), keyed "cli:NAME" in the JSON file.
# Empty: the unknown --reasoning-parser wording was fixed in the stand-in.
STANDIN_CLI_BUGS: dict[str, str] = {}


def params(names: list[str], bugs: dict[str, str], prefix: str = "",
           extra_marks: Callable[[str], list[Any]] | None = None) -> list[Any]:
    """pytest params, known stand-in bugs marked xfail(strict, raises=KnownStandinBug).

    `extra_marks(name)` adds the caller's own marks per param (e.g. which model it needs).
    """
    out = []
    for name in names:
        marks = list(extra_marks(name)) if extra_marks else []
        if name in bugs:
            marks.append(pytest.mark.xfail(strict=True, raises=KnownStandinBug,
                                           reason="stand-in bug: " + bugs[name]))
        out.append(pytest.param(name, id=name, marks=marks))
    return out


def check(key: str, diffs: list[str]) -> None:
    """Pass when no differences; KnownStandinBug when exactly the recorded ones; else fail."""
    if os.environ.get("VLLM_FLEET_DIFF_DUMP"):
        dump = Path(os.environ["VLLM_FLEET_DIFF_DUMP"])
        found = json.loads(dump.read_text()) if dump.is_file() else {}
        dump.write_text(json.dumps({**found, key: diffs}, indent=1, sort_keys=True) + "\n")
    if diffs and diffs == KNOWN_DIFFS.get(key):
        raise KnownStandinBug("\n".join(diffs))
    assert not diffs, f"{key}: stand-in differs from real vLLM:\n  " + "\n  ".join(diffs)
