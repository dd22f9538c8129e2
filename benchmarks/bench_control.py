"""The control machine's cost per host: site.yml re-runs (changed=0, the steady state) on 1, 2
and 5 lab hosts with this repository's ansible.cfg, and on 5 with one setting changed at a time
(pipelining, ControlPersist, forks, the free strategy). Measured for each run: the controller's
CPU-seconds (ansible-playbook and the workers it forks; the detached ssh masters are not
counted), its peak memory (every process of the run, summed) and the ssh processes alive at
once. control_cost fits and extrapolates them. Lab hosts are containers on this machine: the
hosts' own work shares its CPUs, so these are upper bounds for a controller of this size."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.control_cost import fit, plan
from vllm_fleet_lab import lab as lab_cycle
from vllm_fleet_lab.config import LabPaths

REPO = Path(__file__).resolve().parents[1]
VARIANTS: dict[str, dict[str, str]] = {
    "pipelining off": {"ANSIBLE_PIPELINING": "False"},
    "ControlPersist off": {"ANSIBLE_SSH_ARGS": ""},
    "forks 2": {"ANSIBLE_FORKS": "2"},
    "strategy free": {"ANSIBLE_STRATEGY": "free"},
}


def _tree(root: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        pid, ppid = map(int, line.split())
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                              if line.startswith("VmRSS:")))
        except (OSError, StopIteration):
            continue
    return total


def _ssh_processes() -> int:
    return len(subprocess.run(["pgrep", "-x", "ssh"], capture_output=True, text=True).stdout.split())


def run(inventory: Path, hosts: list[str], env: dict[str, str] | None = None, rerun: bool = True) -> dict[str, Any]:
    """One site.yml run limited to `hosts`: wall and CPU seconds, peak memory, ssh processes."""
    # No ssh master left from the last run (a master names itself "ssh: <control path> [mux]").
    subprocess.run(["pkill", "-f", r"^ssh: .*\[mux\]"], check=False)
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "-e",
           f"@{inventory.parent / 'run-vars.yml'}", str(REPO / "site.yml"), "--limit", ",".join(hosts)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = {"rss_kib": 0, "ssh": 0}

    def sample() -> None:
        while proc.poll() is None:
            peak["rss_kib"] = max(peak["rss_kib"], _rss_kib(_tree(proc.pid)))
            peak["ssh"] = max(peak["ssh"], _ssh_processes())
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    output = proc.communicate()[0]
    sampler.join()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or (rerun and " changed=0 " not in output):
        first_error = next((line for line in output.splitlines() if line.startswith("[ERROR]")), "")
        raise RunFailed(f"the re-run on {len(hosts)} host(s) did not end with changed=0 (exit {proc.returncode}) "
                        f"{first_error}", output[-3000:])
    result = {"hosts": len(hosts), "wall_s": wall, "memory_mib": peak["rss_kib"] / 1024, "ssh": peak["ssh"],
              "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}
    # As measured: a later run that fails loses none of the earlier figures.
    print(f"  measured: {env or 'ansible.cfg'} {result}", file=sys.stderr, flush=True)
    return result


class RunFailed(RuntimeError):
    """A site.yml run of the benchmark failed; args: the reason, the output's tail."""


def _variant(inventory: Path, hosts: list[str], env: dict[str, str]) -> dict[str, Any]:
    """A variant that site.yml does not support is a finding, not the end of the benchmark (the
    free strategy was one until validate.yml pinned the linear strategy its add_host needs)."""
    try:
        return run(inventory, hosts, env)
    except RunFailed as exc:
        return {"failed": exc.args[0]}


def measure() -> dict[str, Any]:
    paths = LabPaths.resolve(None)
    record = lab_cycle.up(paths, hosts=5, router=False)
    names = [h["name"] for h in record["hosts"]]
    run(paths.inventory, names, rerun=False)  # the converge; the re-runs follow
    runs = [run(paths.inventory, names[:n]) for n in (1, 2, 5)]
    variants = {label: _variant(paths.inventory, names, env) for label, env in VARIANTS.items()}
    cpu = fit([r["hosts"] for r in runs], [r["cpu_s"] for r in runs])
    memory = fit([r["hosts"] for r in runs], [r["memory_mib"] for r in runs])
    forks = 20  # ansible.cfg
    plans = {s: plan(cpu, memory, runs[0]["wall_s"], 1000, os.cpu_count() or 1, forks, slices=s) for s in (1, 4, 10)}
    lab_cycle.up(paths, hosts=len(names), reset=True, router=False)  # leave the lab as `lab up` makes it
    return {"runs": runs, "variants": variants, "cpu": cpu, "memory": memory, "plans": plans,
            "cores": os.cpu_count(), "forks": forks}
