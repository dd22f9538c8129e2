"""Run site.yml through ansible-runner (vllm_fleet_lab.playbook) and read the outcome, for the
lab tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import ansible_runner

from vllm_fleet_lab.playbook import run_playbook

REPO = Path(__file__).resolve().parents[2]


def run_site(inventory: Path, tmp: Path, *, limit: str | None = None, check: bool = False,
             extravars: dict[str, Any] | None = None) -> ansible_runner.Runner:
    return run_playbook("site.yml", inventory, tmp, limit=limit, extravars=extravars,
                        cmdline="--check --diff" if check else "")


@dataclass(frozen=True)
class FinishedRun:
    """A finished run read back from the artifacts ansible-runner left (the lab's first converge,
    made by another pytest-xdist worker; a job `ansible-runner run` ran): what the tests read of
    an ansible_runner.Runner. The events are read once."""

    rc: int
    status: str
    artifact_dir: Path

    @staticmethod
    def save(path: Path, r: ansible_runner.Runner, seconds: float) -> None:
        path.write_text(json.dumps({"rc": r.rc, "status": r.status, "artifact_dir": str(r.config.artifact_dir),
                                    "seconds": seconds}))

    @staticmethod
    def load(path: Path) -> tuple[FinishedRun, float]:
        data = json.loads(path.read_text())
        return FinishedRun(data["rc"], data["status"], Path(data["artifact_dir"])), data["seconds"]

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        paths = (self.artifact_dir / "job_events").glob("*.json")
        return [json.loads(p.read_text()) for p in sorted(paths, key=lambda p: int(p.name.split("-")[0]))]

    @cached_property
    def stats(self) -> dict[str, Any] | None:
        # ansible_runner.Runner.stats: the playbook_on_stats event's counts.
        last = [e["event_data"] for e in self.events if e.get("event") == "playbook_on_stats"]
        keys = ("skipped", "ok", "dark", "failures", "ignored", "rescued", "processed", "changed")
        return {k: last[-1].get(k, {}) for k in keys} if last else None


def failures(r: ansible_runner.Runner | FinishedRun) -> dict[str, Any]:
    stats = r.stats or {}
    return {**stats.get("failures", {}), **stats.get("dark", {})}


def failed_messages(r: ansible_runner.Runner | FinishedRun) -> list[str]:
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
