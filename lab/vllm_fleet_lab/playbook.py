"""Run one of the project's playbooks (site.yml, playbooks/*.yml) through ansible-runner with the
project's ansible.cfg, for the lab tests and the lab benchmarks, which read its events."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

from .config import REPO_ROOT, LabPaths


def run_playbook(playbook: str, inventory: Path, tmp: Path, *, limit: str | None = None,
                 cmdline: str = "", extravars: dict[str, Any] | None = None,
                 event_handler: Callable[[dict[str, Any]], bool] | None = None) -> ansible_runner.Runner:
    """`playbook` relative to the repository; `tmp` becomes the run's private data dir."""
    tmp.mkdir(parents=True, exist_ok=True)
    run_vars = LabPaths.resolve(None).run_vars
    lab_vars = yaml.safe_load(run_vars.read_text()) if run_vars.exists() else {}
    return ansible_runner.run(
        private_data_dir=str(tmp), playbook=str(REPO_ROOT / playbook), inventory=str(inventory),
        # The smoke role's results land in the repository's artifacts/, whatever runner's cwd is.
        limit=limit, cmdline=cmdline, extravars={**lab_vars, "smoke_artifacts_dir": str(REPO_ROOT / "artifacts"), **(extravars or {})},
        quiet=True,
        event_handler=event_handler,
        # ansible-runner finds ansible-playbook on PATH: the one beside this interpreter.
        envvars={"ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
                 "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"},
    )
