"""The Docker engine the lab runs on: use one that answers, else start Debian's dockerd by hand.

This VM has no systemd as PID 1, so `systemctl start docker` is not an option. A dockerd the lab
starts writes its pidfile and log into the lab dir; `lab down` stops only that one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from .config import LabPaths
from .hostpkgs import ensure_host_packages
from .proc import LabError, log, run


def engine_answers() -> bool:
    return run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False).returncode == 0


def _pid_alive(pid: int) -> bool:
    # A dockerd started by this very process (a test session) stays a zombie after it exits
    # until it is reaped; signal 0 still reaches a zombie, so reap it first.
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: its parent reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _is_dockerd(pid: int) -> bool:
    """Guards against a stale pidfile whose PID now belongs to something else."""
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and os.path.basename(cmdline[0].decode(errors="replace")) == "dockerd"


def lab_dockerd_pid(paths: LabPaths) -> int | None:
    """PID of the dockerd this lab started, if it is still running."""
    try:
        pid = int(paths.dockerd_pid.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) and _is_dockerd(pid) else None


def ensure_engine(paths: LabPaths) -> str:
    """Make `docker info` answer. Returns "external" or "lab" (who owns the engine)."""
    if engine_answers():
        return "lab" if lab_dockerd_pid(paths) else "external"
    if shutil.which("dockerd") is None:
        ensure_host_packages(["docker.io"])
    if shutil.which("docker") is None:
        raise LabError("no docker client on PATH; install Debian's docker.io (apt-get install docker.io).")
    paths.root.mkdir(parents=True, exist_ok=True)
    log(f"starting dockerd (log: {paths.dockerd_log})")
    with open(paths.dockerd_log, "ab") as logf:
        # A new session so the daemon outlives this process and a ^C here does not reach it.
        subprocess.Popen(
            ["dockerd", "--pidfile", str(paths.dockerd_pid)],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if engine_answers():
            return "lab"
        time.sleep(0.5)
    tail = paths.dockerd_log.read_text(errors="replace")[-1500:]
    raise LabError(
        f"dockerd did not answer within 60 s. The end of {paths.dockerd_log}:\n{tail}\n"
        "Fix the cause shown there (another dockerd on /var/run/docker.sock? a stale "
        "/var/run/docker.pid?) and run `vllm-fleet-lab up` again."
    )


def stop_engine(paths: LabPaths) -> bool:
    """Stop the dockerd the lab started (by its pidfile). Returns True when one was stopped."""
    pid = lab_dockerd_pid(paths)
    if pid is None:
        paths.dockerd_pid.unlink(missing_ok=True)
        return False
    log(f"stopping the lab's dockerd (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.2)
    if _pid_alive(pid):
        raise LabError(f"dockerd (pid {pid}) did not stop within 30 s; check {paths.dockerd_log}.")
    paths.dockerd_pid.unlink(missing_ok=True)
    return True
