"""site.yml on the lab: first converge and idempotent re-run on 1 host and on all hosts, and the
re-run with the project's ansible.cfg tuning switched off. Lab hosts are containers on this one
machine, so these are lab figures, not the times of real GPU hosts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vllm_fleet_lab import lab as lab_cycle
from vllm_fleet_lab import state as lab_state
from vllm_fleet_lab.config import LabPaths

REPO = Path(__file__).resolve().parents[1]
# What ansible.cfg tunes, set back to Ansible's defaults for the "before" figure.
UNTUNED = {"ANSIBLE_PIPELINING": "False", "ANSIBLE_SSH_ARGS": "", "ANSIBLE_FORKS": "5",
           "ANSIBLE_GATHERING": "implicit", "ANSIBLE_CACHE_PLUGIN": "memory"}


def _site(inventory: Path, limit: str | None, extra_env: dict[str, str] | None = None) -> float:
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(REPO / "site.yml")]
    if limit:
        cmd += ["--limit", limit]
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), **(extra_env or {})}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"site.yml failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    return seconds


def _fresh(paths: LabPaths, names: list[str]) -> None:
    lab_cycle.up(paths, hosts=len(names), reset=True, router=False)


def measure() -> dict[str, Any]:
    paths = LabPaths.resolve(None)
    # The GPU hosts alone: the router's few tasks would blur the per-host figures.
    record = lab_cycle.up(paths, hosts=4, router=False)
    names = [h["name"] for h in record["hosts"]]
    inventory = paths.inventory
    out: dict[str, Any] = {"hosts": len(names)}
    _fresh(paths, names)
    out["first_1_s"] = _site(inventory, names[0])
    out["rerun_1_s"] = _site(inventory, names[0])
    _fresh(paths, names)
    out["first_all_s"] = _site(inventory, None)
    out["rerun_all_s"] = _site(inventory, None)
    out["rerun_all_untuned_s"] = _site(inventory, None, UNTUNED)
    out["first_all_over_1"] = out["first_all_s"] / out["first_1_s"]
    out["rerun_all_over_1"] = out["rerun_all_s"] / out["rerun_1_s"]
    out["untuned_over_tuned_rerun"] = out["rerun_all_untuned_s"] / out["rerun_all_s"]
    _fresh(paths, names)  # leave the lab as `lab up` makes it
    lab_state.load(paths)
    return out
