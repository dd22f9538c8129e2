"""The lock that keeps two upgrade or rollback runs off one host at a time.

The lock is a file on the host (the vllm role's tasks/lock.yml writes it under a short flock, so
that two runs cannot both take it): its first line is the run's id, the second a JSON record
of who holds it. The run that holds it is an ansible-playbook process on some controller, so
whether that run is still going can only be told there: a holder on this controller whose
process is gone (killed, crashed) left the lock behind and is taken over at once; a holder on
another controller is taken over only once the lock is older than the stale limit, and until
then the run stops with a sentence naming the holder.

run_owner() is evaluated inside ansible-playbook (in a filter): there, the process to name is
the ansible-playbook main process, which every worker process is forked from."""

from __future__ import annotations

import getpass
import json
import multiprocessing
import os
import socket
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def _boot_and_pidns() -> str:
    """What tells two controllers with one host name apart: the kernel's boot id and the PID
    namespace (two containers on one machine). Empty where /proc has neither (macOS)."""
    parts = []
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8])
    except OSError:
        pass
    try:
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return "/".join(parts)


def process_start(pid: int) -> str:
    """When process `pid` started (clock ticks since boot on Linux, ps's lstart elsewhere), so
    that a reused pid is not taken for the run that held the lock; '' when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        pass
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True,
                             timeout=5, check=False)
        return " ".join(out.stdout.split())
    except (OSError, subprocess.SubprocessError):
        return ""


def process_alive(pid: int, started: str) -> bool:
    """Whether process `pid` runs on this machine and is the one that started at `started`."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False  # a zombie: dead, not yet reaped
    except (OSError, IndexError):
        pass
    return not started or process_start(pid) == started


def run_owner(purpose: str) -> dict[str, Any]:
    """This ansible-playbook run, as the lock records it."""
    parent = multiprocessing.parent_process()
    pid = parent.pid if parent is not None and parent.pid else os.getpid()
    controller = socket.gethostname()
    started = process_start(pid)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return {
        "run": f"{controller}:{pid}:{started.replace(' ', '_')}",
        "purpose": str(purpose),
        "controller": controller,
        "controller_id": f"{controller}/{_boot_and_pidns()}",
        "pid": pid,
        "started": started,
        "user": user,
    }


def lock_text(owner: Mapping[str, Any]) -> str:
    """What the lock file holds: the run id, then the record."""
    return f"{owner['run']}\n{json.dumps(dict(owner), sort_keys=True)}\n"


def parse_lock(text: str) -> tuple[float | None, str, dict[str, Any] | None]:
    """The output of lock.yml's read (`<age in s>` then the lock file; empty: no lock) as
    (age, run id, record or None when unreadable). ('', None) for no lock."""
    lines = (text or "").splitlines()
    if not lines:
        return None, "", None
    try:
        age: float | None = float(lines[0])
    except ValueError:
        age = None
    run = lines[1].strip() if len(lines) > 1 else ""
    try:
        record = json.loads(lines[2]) if len(lines) > 2 else None
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("run") != run:
        record = None
    return age, run, record


def describe(record: Mapping[str, Any] | None, run: str, age: float | None) -> str:
    since = f" for {int(age)} s" if age is not None else ""
    if not record:
        return f"an unreadable lock (run {run or '?'}){since}"
    return (f"{record.get('purpose', '?')} run by {record.get('user', '?')} from {record.get('controller', '?')} "
            f"(ansible-playbook pid {record.get('pid', '?')}, run {run}){since}")


def lock_verdict(read: str, me: Mapping[str, Any], stale_after_s: float,
                 alive: Callable[[int, str], bool] = process_alive) -> dict[str, Any]:
    """Whether this run may take the lock, from what lock.yml read on the host.

    Returns take (bool), state (free, ours, stale or busy), holder (a sentence naming who
    holds it), why (a sentence: why it is stale) and expect (the run id the host's lock must
    still hold when this run writes its own: '' for none)."""
    age, run, record = parse_lock(read)
    verdict = {"take": True, "state": "free", "holder": "", "why": "", "expect": run}
    if not run and age is None:
        return verdict
    holder = describe(record, run, age)
    verdict["holder"] = holder
    if run == me.get("run"):
        return {**verdict, "state": "ours"}
    if record is None:
        # A lock this collection did not write whole (an interrupted write, an edit by hand).
        return {**verdict, "state": "stale", "why": f"{holder} is not a lock record this collection writes"}
    if record.get("controller_id") == me.get("controller_id"):
        try:
            pid = int(record.get("pid") or 0)
        except (TypeError, ValueError):
            pid = 0
        if not alive(pid, str(record.get("started") or "")):
            return {**verdict, "state": "stale",
                    "why": f"{holder}: that ansible-playbook process is gone from this controller"}
        return {**verdict, "take": False, "state": "busy"}
    if age is not None and age > float(stale_after_s):
        return {**verdict, "state": "stale",
                "why": f"{holder}: older than vllm_upgrade_lock_stale_sec ({int(float(stale_after_s))} s), "
                       "and held from another controller, where this run cannot see whether it still goes on"}
    return {**verdict, "take": False, "state": "busy"}
