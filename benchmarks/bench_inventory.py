"""Inventory resolution speed: vllm_fleet.inventory.load_inventory vs `ansible-inventory --list`.

`measure()` generates the realistic fleet inventory (benchmarks.inventory_gen, fleet=True) in a
temporary directory and times both on this machine. It reports timings only; it makes no
claim about GPUs (the inventory is synthetic).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from benchmarks.inventory_gen import generate
from vllm_fleet.inventory import load_inventory


def _ansible_env(home: Path) -> dict[str, str]:
    """Defaults only: an empty ansible.cfg and no inherited ANSIBLE_* overrides."""
    cfg = home / "empty.cfg"
    cfg.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(cfg), ANSIBLE_HOME=str(home), ANSIBLE_LOCAL_TEMP=str(home / "tmp"))
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time_ansible_inventory(path: Path, home: Path) -> tuple[float, float, int]:
    """(wall s, CPU s, hosts) of one `ansible-inventory --list`."""
    exe = Path(sys.executable).parent / "ansible-inventory"
    cpu0, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(
        [str(exe), "-i", str(path), "--list"],
        capture_output=True, text=True, env=_ansible_env(home), cwd=home, check=True,
    )
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    return wall, cpu, len(json.loads(proc.stdout)["_meta"]["hostvars"])


def _best_of(repeats: int, path: Path) -> tuple[float, float, int]:
    """Best wall and CPU seconds of `repeats` in-process runs (each one re-reads every file).

    CPU time is reported too because wall time on a shared 2-core machine swings with load.
    """
    best_wall = best_cpu = float("inf")
    count = 0
    for _ in range(repeats):
        cpu0, start = time.process_time(), time.perf_counter()
        inv = load_inventory([path])
        best_wall = min(best_wall, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu0)
        count = len(inv.hosts)
    return best_wall, best_cpu, count


def measure(hosts: int = 10000, fmt: Literal["yaml", "ini"] = "yaml", repeats: int = 3) -> dict[str, Any]:
    """Seconds for load_inventory and for `ansible-inventory --list` on a generated fleet."""
    with tempfile.TemporaryDirectory(prefix="vllm-fleet-bench-") as tmp:
        root = Path(tmp)
        path = generate(root / "inventory", hosts, seed=0, fmt=fmt, fleet=True)
        (root / "home").mkdir()
        ours, ours_cpu, our_hosts = _best_of(repeats, path)
        theirs, theirs_cpu, their_hosts = _time_ansible_inventory(path, root / "home")
    if our_hosts != their_hosts:
        raise RuntimeError(f"host count differs: load_inventory {our_hosts}, ansible-inventory {their_hosts}")
    return {
        "hosts": our_hosts,
        "format": fmt,
        "load_inventory_s": round(ours, 4),
        "load_inventory_cpu_s": round(ours_cpu, 4),
        "ansible_inventory_list_s": round(theirs, 3),
        "ansible_inventory_list_cpu_s": round(theirs_cpu, 3),
        "ratio": round(theirs / ours, 1),
        "ratio_cpu": round(theirs_cpu / ours_cpu, 1),
    }


if __name__ == "__main__":
    for fmt in ("yaml", "ini"):
        print(json.dumps(measure(fmt=fmt)))
