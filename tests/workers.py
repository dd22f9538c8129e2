"""What pytest-xdist's workers share: their common base directory, and the files through which
the three streams (suite, lab, hopper) wait for each other (tests/conftest.py)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest


def shared_dir(config: pytest.Config) -> Path | None:
    """The base directory pytest-xdist's workers share, or None outside pytest-xdist. The
    controller hands each worker `--basetemp <shared>/<worker id>`, so it is known before any
    fixture (pytest-xdist's recipe for session fixtures shared by workers uses the same parent)."""
    if not hasattr(config, "workerinput") or not config.option.basetemp:
        return None
    return Path(config.option.basetemp).resolve().parent


def lab_up_marker(config: pytest.Config) -> Path | None:
    """Written by the lab stream once `lab up` returned (or failed); None outside pytest-xdist."""
    shared = shared_dir(config)
    return shared / "lab-up" if shared else None


def converged_marker(config: pytest.Config) -> Path | None:
    """Written by the lab stream once the first converge of the lab returned, and by its session
    end (tests/conftest.py); None outside pytest-xdist."""
    shared = shared_dir(config)
    return shared / "lab-converged" if shared else None


# The lab's second stream: the tests marked `hopper` (the drills on hosts 1 and 2 and the router)
# run beside the lab stream's tests on hosts 3-5 once the lab has converged, when pytest-xdist has
# a worker for each stream (`make test` starts three). With fewer they join the lab stream.
STREAMS = ("suite", "lab", "hopper")
STREAM = pytest.StashKey[str]()  # an item's
# The stream of the test this worker is running, and those it ran: the lab fixtures differ between
# the lab stream, which brings the lab up and down, and the hopper stream, which only uses it.
CURRENT_STREAM = pytest.StashKey[str]()
RAN_STREAMS = pytest.StashKey["set[str]"]()
HOPPER_SELECTED = pytest.StashKey[bool]()  # any test of the session's (after -k, -m) in the hopper stream


def lab_split(config: pytest.Config) -> bool:
    """True when the hopper tests have a stream (and so a pytest-xdist worker) of their own."""
    workerinput = getattr(config, "workerinput", None)
    return shared_dir(config) is not None and int((workerinput or {}).get("workercount", 0)) >= len(STREAMS)


def stream_of(item: pytest.Item, split: bool) -> str:
    if not item.get_closest_marker("lab"):
        return "suite"
    return "hopper" if split and item.get_closest_marker("hopper") else "lab"


def converge_record(config: pytest.Config) -> Path | None:
    """Written by the lab stream when the first converge returned: its exit code, artifacts and
    seconds, which the hopper stream reads instead of converging again."""
    shared = shared_dir(config)
    return shared / "lab-converge.json" if shared else None


def hopper_done_marker(config: pytest.Config) -> Path | None:
    """Written when the hopper stream's session ends: the lab stream takes the lab down only then."""
    shared = shared_dir(config)
    return shared / "hopper-done" if shared else None


# Past this a stream waiting for the lab stream goes on anyway: a lab stream that slow to converge
# has gone wrong, and the other streams' own results should not wait for it (cold, `lab up` and
# the converge take 12-20 minutes on two cores).
LAB_WAIT_S = 1800


def wait_for(marker: Path, seconds: float) -> bool:
    """Whether `marker` appeared within `seconds` (polled: the streams are separate processes)."""
    started = time.monotonic()
    while not marker.exists():
        if time.monotonic() - started > seconds:
            return False
        time.sleep(2)
    return True


def _threads_below(root: int) -> list[int]:
    """Thread ids of process `root` and of every process below it (Linux nice values are per thread)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return [int(t.name) for pid in pids for t in Path(f"/proc/{pid}/task").glob("[0-9]*")]


def yield_cpu_until(marker: Path) -> None:
    """Run this worker, and whatever it starts, at the lowest CPU priority until `marker` appears,
    then at the usual one again: the suite stream runs beside `lab up` and the first converge,
    the lab streams' critical path, mostly in the CPU they leave idle. Only mostly: the lab hosts'
    processes are in Docker's cgroups, which nice values do not reach, and the disk is shared
    (README, `make test`: `lab up` 172 s instead of 60, the converge 477 s instead of
    403, and make test 1,342 s instead of 1,444, the suite having ended before the converge)."""
    os.nice(19)

    def restore() -> None:
        wait_for(marker, LAB_WAIT_S)
        for tid in _threads_below(os.getpid()):
            try:
                os.setpriority(os.PRIO_PROCESS, tid, 0)
            except OSError:  # gone, or no CAP_SYS_NICE (not root): it stays low
                pass

    threading.Thread(target=restore, name="restore-cpu-priority", daemon=True).start()
