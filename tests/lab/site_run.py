"""Run site.yml (or any playbook of the project) through ansible-runner and read the outcome,
for the lab tests."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ansible_runner

REPO = Path(__file__).resolve().parents[2]


def run_playbook(playbook: str, inventory: Path, tmp: Path, *, limit: str | None = None,
                 cmdline: str = "", extravars: dict[str, Any] | None = None,
                 event_handler: Callable[[dict[str, Any]], bool] | None = None) -> ansible_runner.Runner:
    """`playbook` relative to the repository (site.yml, playbooks/upgrade.yml, ...)."""
    tmp.mkdir(parents=True, exist_ok=True)
    return ansible_runner.run(
        private_data_dir=str(tmp), playbook=str(REPO / playbook), inventory=str(inventory),
        limit=limit, cmdline=cmdline, extravars=extravars or {}, quiet=True,
        event_handler=event_handler,
        # ansible-runner finds ansible-playbook on PATH: the one beside this interpreter.
        envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                 "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"},
    )


def run_site(inventory: Path, tmp: Path, *, limit: str | None = None, check: bool = False,
             extravars: dict[str, Any] | None = None) -> ansible_runner.Runner:
    return run_playbook("site.yml", inventory, tmp, limit=limit, extravars=extravars,
                        cmdline="--check --diff" if check else "")


def failures(r: ansible_runner.Runner) -> dict[str, Any]:
    stats = r.stats or {}
    return {**stats.get("failures", {}), **stats.get("dark", {})}


def failed_messages(r: ansible_runner.Runner) -> list[str]:
    return [json.dumps(e["event_data"].get("res", {}).get("msg", ""))
            for e in r.events if e.get("event") == "runner_on_failed"]
