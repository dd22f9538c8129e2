"""Fixtures shared by the packaging and lab tests, and the split of the suite into streams.

`make test` runs pytest-xdist with three workers: the lab tests (marker `lab`: one lab, its hosts
shared, so one worker and in order), the hopper drills (markers `lab` and `hopper`: the rolling
upgrade, router and watchdog drills, on hosts 1 and 2 and the router, which no other lab test
touches once the lab has converged) and everything else, the stand-ins' own tests under
tests/lab included (they start local processes, not the lab). The drills mostly wait on restarts
and health checks; the other streams fill the CPU they leave
(https://pytest-xdist.readthedocs.io/en/stable/distribution.html).

Except at the start: `lab up` and the first converge of the lab (the lab stream's first steps,
on everyone's critical path: the hopper stream waits for them) keep the machine busy: beside the
suite stream at the same priority `lab up` took 511 s instead of 241 on two cores, and the
converge kept both cores 96% busy. Until the converge returned (`converged_marker`;
`lab_up_marker` when no test needs converged hosts) the suite stream runs at the lowest CPU
priority, in what they leave idle, its long tests without deadlines first.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import shutil
from pathlib import Path

import pytest

from tests.installed import Installed, install
from tests.workers import (CURRENT_STREAM, HOPPER_SELECTED, RAN_STREAMS, STREAM, converged_marker, hopper_done_marker,
                           lab_split, lab_up_marker, shared_dir, stream_of, yield_cpu_until)


# tryfirst: pytest-xdist reads the marks in its own hook of this name (the group becomes part of
# each test's id there), which would otherwise run before this one.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    split = lab_split(config)
    for item in items:
        item.stash[STREAM] = stream = stream_of(item, split)
        item.add_marker(pytest.mark.xdist_group(stream))
    # Stable: the rest keep their order.
    items.sort(key=lambda item: item.stash[STREAM] != "suite" or not item.nodeid.startswith(FIRST_IN_SUITE))


# Long and CPU-bound, with no deadline that a low CPU priority could miss: what the suite stream
# runs while it yields the CPU to `lab up` and the converge.
FIRST_IN_SUITE = ("tests/unit/test_contract.py", "tests/unit/test_linters.py", "tests/packaging/")


_WAIT_FOR = pytest.StashKey["Path | None"]()


def pytest_collection_finish(session: pytest.Session) -> None:
    # After deselection (-m, -k): only a lab this session really brings up (and converges) is
    # worth waiting for.
    fixtures = set().union(*(item.fixturenames for item in session.items))
    wait_for = None
    if "first_converge" in fixtures:
        wait_for = converged_marker(session.config)
    elif "lab" in fixtures:
        wait_for = lab_up_marker(session.config)
    session.config.stash[_WAIT_FOR] = wait_for
    session.config.stash[HOPPER_SELECTED] = any(item.stash.get(STREAM, "") == "hopper" for item in session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    # A lab stream that never converges (lab up, the hosts' reset or site.yml raised: every lab
    # test then errors at once) or is interrupted must not hold the other streams back; the lab
    # stream waits for the hopper stream's end before it takes the lab down.
    # Only the stream that writes a marker: the suite stream may end before the converge.
    ran = session.config.stash.get(RAN_STREAMS, set())
    markers = [lab_up_marker(session.config), converged_marker(session.config)] if "lab" in ran else []
    if "hopper" in ran:
        markers.append(hopper_done_marker(session.config))
    for marker in markers:
        if marker and marker.parent.is_dir():
            marker.touch()


_suite_started = False


# tryfirst: before the test's fixtures, the session-scoped ones of the suite's first test included.
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _suite_started
    stream = item.stash.get(STREAM, "suite")
    item.config.stash[CURRENT_STREAM] = stream
    item.config.stash.setdefault(RAN_STREAMS, set()).add(stream)
    if _suite_started or stream != "suite":
        return
    _suite_started = True
    marker = item.config.stash.get(_WAIT_FOR, None)
    if marker is not None and not marker.exists():
        yield_cpu_until(marker)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Installed:
    """The wheel and the collection built from this checkout, installed outside it: once a
    session, whichever stream asks first (the build writes into the checkout, so two at once
    would collide; pytest-xdist's recipe for a session fixture shared by workers)."""
    shared = shared_dir(request.config)
    if shared is None:
        return install(tmp_path_factory.mktemp("installed"))
    done = shared / "installed.json"
    with open(shared / "installed.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            root = shared / "installed"
            shutil.rmtree(root, ignore_errors=True)  # what a failed attempt of the other worker left
            root.mkdir()
            done.write_text(json.dumps({k: str(v) for k, v in dataclasses.asdict(install(root)).items()}))
    return Installed(**{k: Path(v) for k, v in json.loads(done.read_text()).items()})
