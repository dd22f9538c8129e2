"""Run site.yml through ansible-runner and read the outcome, for the lab tests."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import ansible_runner

REPO = Path(__file__).resolve().parents[2]


def run_site(inventory: Path, tmp: Path, *, limit: str | None = None, check: bool = False,
             extravars: dict[str, Any] | None = None) -> ansible_runner.Runner:
    cmdline = "--check --diff" if check else ""
    return ansible_runner.run(
        private_data_dir=str(tmp), playbook=str(REPO / "site.yml"), inventory=str(inventory),
        limit=limit, cmdline=cmdline, extravars=extravars or {}, quiet=True,
        # ansible-runner finds ansible-playbook on PATH: the one beside this interpreter.
        envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                 "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"},
    )


def failures(r: ansible_runner.Runner) -> dict[str, Any]:
    stats = r.stats or {}
    return {**stats.get("failures", {}), **stats.get("dark", {})}


def failed_messages(r: ansible_runner.Runner) -> list[str]:
    return [json.dumps(e["event_data"].get("res", {}).get("msg", ""))
            for e in r.events if e.get("event") == "runner_on_failed"]
