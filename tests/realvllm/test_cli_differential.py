"""`vllm serve` argument errors: the stand-in (VLLM_STANDIN_VERSION=0.32.0) must exit with the
same code and the same last stderr line as real vLLM 0.32.0 (taken from vLLM's own parser and
validators via the session fixture `parsed_by_vllm`; no real server starts).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.realvllm.standin_bugs import STANDIN_CLI_BUGS, check, params
from tests.realvllm.support import CLI_NEGATIVE, REPO, VLLM_VERSION, serve

pytestmark = pytest.mark.realvllm

STANDIN = REPO / "lab" / "vllm-standin" / "bin" / "vllm"

# Lists of valid names differ by design (the stand-in knows a subset); everything else must not.
LISTS = [(re.compile(r"\(choose from [^)]*\)"), "(choose from <LIST>)"),
         (re.compile(r"\(chose from \{[^}]*\}\)"), "(chose from {<LIST>})"),
         (re.compile(r"Available parsers: [^\"']*"), "Available parsers: <LIST>")]


def cli_line(text: str) -> str:
    for pattern, replacement in LISTS:
        text = pattern.sub(replacement, text)
    return re.sub(r"\d+", "N", text)


@pytest.mark.parametrize("name", params(list(CLI_NEGATIVE), STANDIN_CLI_BUGS))
def test_standin_cli_errors_match_real_vllm(parsed_by_vllm: dict[str, Any], name: str) -> None:
    real = parsed_by_vllm[name]
    assert not real["ok"], real
    env = {**os.environ, "VLLM_STANDIN_VERSION": VLLM_VERSION, "VLLM_STANDIN_LOAD_SECONDS": "0"}
    proc = subprocess.run([sys.executable, str(STANDIN), "serve", *CLI_NEGATIVE[name], "--port",
                           str(serve.free_port())], capture_output=True, text=True, env=env, timeout=60)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    got = (proc.returncode, cli_line(lines[-1] if lines else ""))
    want = (real["exit_code"], cli_line(real["error"]))
    diffs = [] if got == want else [f"real exit {want[0]} {want[1]!r}; stand-in exit {got[0]} {got[1]!r}"]
    check(f"cli:{name}", diffs)
