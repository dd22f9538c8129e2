"""Fixtures shared by the packaging and lab tests, and the split of the suite into two streams.

`make test` runs pytest-xdist with two workers: the lab tests (marker `lab`: one lab, its hosts
shared, so one worker and in order) beside everything else, the stand-ins' own tests under
tests/lab included (they start local processes, not the lab). The lab mostly waits on its
hosts; the other stream fills the CPU it leaves (https://pytest-xdist.readthedocs.io/en/stable/distribution.html).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import shutil
from pathlib import Path

import pytest

from tests.installed import Installed, install

# tryfirst: pytest-xdist reads the marks in its own hook of this name (the group becomes part of
# each test's id there), which would otherwise run before this one.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        stream = "lab" if item.get_closest_marker("lab") else "suite"
        item.add_marker(pytest.mark.xdist_group(stream))


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Installed:
    """The wheel and the collection built from this checkout, installed outside it: once a
    session, whichever stream asks first (the build writes into the checkout, so two at once
    would collide; pytest-xdist's recipe for a session fixture shared by workers)."""
    if not hasattr(request.config, "workerinput"):  # not under pytest-xdist
        return install(tmp_path_factory.mktemp("installed"))
    shared = tmp_path_factory.getbasetemp().parent  # the workers' common base directory
    done = shared / "installed.json"
    with open(shared / "installed.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            root = shared / "installed"
            shutil.rmtree(root, ignore_errors=True)  # what a failed attempt of the other worker left
            root.mkdir()
            done.write_text(json.dumps({k: str(v) for k, v in dataclasses.asdict(install(root)).items()}))
    return Installed(**{k: Path(v) for k, v in json.loads(done.read_text()).items()})
