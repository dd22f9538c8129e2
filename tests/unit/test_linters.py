"""yamllint and ansible-lint (production profile, .ansible-lint) on the repository, as `make
lint-yaml` and `make lint-ansible` run them: here they run beside the lab tests instead of
before every other test. Judged by their exit status; their output is the failure message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("argv", [["yamllint", "-s", "."], ["ansible-lint", "-q"]], ids=["yamllint", "ansible-lint"])
def test_linter_is_clean(argv: list[str]) -> None:
    tool = BIN / argv[0]
    if not tool.exists():
        pytest.skip(f"{argv[0]} is not installed next to this Python (pip install -e '.[test]')")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), NO_COLOR="1")
    proc = subprocess.run([str(tool), *argv[1:]], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
