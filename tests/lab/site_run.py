"""Run site.yml through ansible-runner (vllm_fleet_lab.playbook) and read the outcome, for the
lab tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ansible_runner

from vllm_fleet_lab.playbook import run_playbook

REPO = Path(__file__).resolve().parents[2]


def run_site(inventory: Path, tmp: Path, *, limit: str | None = None, check: bool = False,
             extravars: dict[str, Any] | None = None) -> ansible_runner.Runner:
    return run_playbook("site.yml", inventory, tmp, limit=limit, extravars=extravars,
                        cmdline="--check --diff" if check else "")


def failures(r: ansible_runner.Runner) -> dict[str, Any]:
    stats = r.stats or {}
    return {**stats.get("failures", {}), **stats.get("dark", {})}


def failed_messages(r: ansible_runner.Runner) -> list[str]:
    """host, task and message of every failure (a loop's failed items' messages included)."""
    out = []
    for e in r.events:
        if e.get("event") not in ("runner_on_failed", "runner_on_unreachable"):
            continue
        data = e["event_data"]
        res = data.get("res", {})
        items = [i.get("msg") or i.get("stderr") or "" for i in res.get("results", []) if i.get("failed")]
        out.append(f"{data.get('host')} | {data.get('task')}: " + json.dumps(res.get("msg", ""))
                   + "".join(f"\n  item: {str(m)[-1500:]}" for m in items))
    return out
