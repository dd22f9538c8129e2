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
from pathlib import Path
from typing import Any

import pytest

KNOWN_DIFFS_FILE = Path(__file__).resolve().parent / "known_standin_diffs.json"
KNOWN_DIFFS: dict[str, list[str]] = json.loads(KNOWN_DIFFS_FILE.read_text())


class KnownStandinBug(AssertionError):
    """The stand-in differs from real vLLM exactly as recorded in known_standin_diffs.json."""


# HTTP cases (test_differential.py); each reason says what real vLLM does.
_CHAT_FIELDS = ("chat.completion lacks top-level prompt_token_ids, prompt_text, ec_transfer_params, "
                "metrics (real vLLM 0.32.0 sends all four, as null)")
_STREAM = ("stream: first chunk lacks prompt_token_ids/prompt_text; the finish_reason chunk has "
           "delta {} where real sends {\"content\": \"\"}; system_fingerprint missing from the "
           "usage chunk (or, without include_usage, from the finish chunk)")
STANDIN_BUGS: dict[str, str] = {
    "chat": _CHAT_FIELDS,
    "chat_thinking_off": _CHAT_FIELDS,
    "prompt_plus_max_tokens_over_limit": _CHAT_FIELDS,
    "chat_stream": _STREAM,
    "chat_stream_no_usage": _STREAM,
    "chat_thinking_off_stream": _STREAM,
    "chat_max_tokens_64": (_CHAT_FIELDS + "; and with max_tokens set it pads with ' lorem' to "
                           "max_tokens (finish 'length') where real vLLM stops at EOS "
                           "(content '\\n\\n4', finish 'stop')"),
    "completions": ("text_completion lacks service_tier, system_fingerprint, kv_transfer_params, "
                    "ec_transfer_params, metrics and usage.completion_tokens_details"),
    "unknown_model": ("404 message lacks the final period: real 'The model `foo` does not exist. "
                      "Valid aliases: nvidia/Qwen3.6-35B-A3B-NVFP4.'"),
    "no_key_health": ("/health sends content-type application/json with an empty body; real "
                      "vLLM sends no content-type (empty body)"),
}

# `vllm serve` argument errors (test_cli_differential.py), keyed "cli:NAME" in the JSON file.
STANDIN_CLI_BUGS: dict[str, str] = {
    "bogus-reasoning-parser": ("unknown --reasoning-parser: real vLLM's KeyError reads \"Reasoning "
                               "parser 'bogus' not found. Available parsers: a, b, ...\"; the "
                               "stand-in stops after 'not found' (exit code 1 matches)"),
}


def params(names: list[str], bugs: dict[str, str], prefix: str = "") -> list[Any]:
    """pytest params, known stand-in bugs marked xfail(strict, raises=KnownStandinBug)."""
    out = []
    for name in names:
        marks = []
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
