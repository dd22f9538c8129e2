"""The issue's lint target: `vllm-fleet lint` on 10,000 hosts vs `ansible-inventory --list`.

Both are timed as the commands a CI job runs (new processes, start-up included), in one run.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_inventory import _ansible_env, _time_ansible_inventory
from benchmarks.inventory_gen import generate


def _time_lint(path: Path, home: Path) -> tuple[float, int]:
    exe = Path(sys.executable).parent / "vllm-fleet"
    start = time.perf_counter()
    proc = subprocess.run([str(exe), "lint", str(path), "--format", "text"], capture_output=True, text=True,
                          env=_ansible_env(home), cwd=home)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"vllm-fleet lint failed ({proc.returncode}): {proc.stderr.strip()}")
    return wall, proc.returncode


def measure(hosts: int = 10000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vllm-fleet-bench-") as tmp:
        root = Path(tmp)
        path = generate(root / "inventory", hosts, seed=0, fmt="yaml", fleet=True)
        (root / "home").mkdir()
        lint_s, lint_rc = _time_lint(path, root / "home")
        ansible_s, _, counted = _time_ansible_inventory(path, root / "home")
    return {"hosts": counted, "vllm_fleet_lint_s": round(lint_s, 3), "lint_exit_code": lint_rc,
            "ansible_inventory_list_s": round(ansible_s, 3), "lint_over_ansible_inventory": round(lint_s / ansible_s, 3)}
