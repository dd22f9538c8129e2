"""Fixtures for tests that need the lab (marker `lab`): one `lab up` per session, reused.

Tests that change a host (install packages, edit daemon.json) call `lab.dirty(name)`; at the end
of the session those hosts are recreated from scratch, so the lab is left as `lab up` made it
(set VLLM_FLEET_LAB_NO_RESET=1 to keep them for a post-mortem).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import pytest
from vllm_fleet_lab import lab as lab_cycle
from vllm_fleet_lab import state as lab_state
from vllm_fleet_lab.config import LabPaths
from vllm_fleet_lab.proc import LabError

from tests.lab.site_run import FinishedRun, run_site
from tests.workers import (CURRENT_STREAM, HOPPER_SELECTED, LAB_WAIT_S, converge_record, converged_marker,
                           hopper_done_marker, lab_up_marker, wait_for)

MIN_HOSTS = 5  # hosts 1-4: the stand-in; host 5: real vLLM (config.REAL_VLLM_HOST_INDEX)


@dataclass
class Lab:
    paths: LabPaths
    record: dict[str, Any]
    # True when this session started the lab: its hosts are then as `lab up` made them, except
    # those marked dirty.
    started_here: bool = False
    # True in the hopper stream's worker: the lab stream's worker brings the lab up, converges it
    # and takes it down; this one only uses it.
    guest: bool = False
    _dirty: set[str] = field(default_factory=set)
    _hosts: dict[str, Any] = field(default_factory=dict)

    @property
    def host_names(self) -> list[str]:
        return [h["name"] for h in self.record["hosts"]]

    @property
    def gpu_host_names(self) -> list[str]:
        """The hosts with a stand-in GPU (all but the router)."""
        return [h["name"] for h in self.record["hosts"] if h["gpus"]]

    def address(self, name: str) -> str:
        return next(h["address"] for h in self.record["hosts"] if h["name"] == name)

    def host(self, name: str) -> Any:
        """A testinfra host over ssh with the lab's key (ssh_config written by `lab up`)."""
        import testinfra

        if name not in self._hosts:
            self._hosts[name] = testinfra.get_host(f"ssh://{name}", ssh_config=str(self.paths.ssh_config))
        return self._hosts[name]

    def identity(self, name: str) -> dict[str, Any]:
        return json.loads((self.paths.identities / f"{name}.json").read_text())

    def dirty(self, name: str) -> None:
        self._dirty.add(name)

    def recreate(self, names: list[str]) -> None:
        """Fresh hosts, as `lab up` makes them (for tests that need a first converge)."""
        for name in names:
            lab_cycle.remove_host(name)
            self._dirty.discard(name)
        self._hosts.clear()
        self.record = lab_cycle.up(self.paths, hosts=lab_cycle.gpu_host_count(self.record))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests on the hosts as `lab up` made them first, then those on converged hosts
    (fresh_lab recreates every host once, then site.yml converges them): a raw-host test that ran
    after the converge would meet a converged host, and its changes would break later runs."""
    here = Path(__file__).resolve().parent
    slots = [i for i, item in enumerate(items) if here in Path(item.path).resolve().parents]
    ordered = sorted((items[i] for i in slots), key=lambda item: "fresh_lab" in item.fixturenames)
    for index, item in zip(slots, ordered, strict=True):
        items[index] = item


def _guest_lab(config: pytest.Config, paths: LabPaths) -> Lab:
    marker = converged_marker(config)
    if marker is None or not wait_for(marker, LAB_WAIT_S):
        pytest.fail(f"the lab stream did not converge the lab within {LAB_WAIT_S} s", pytrace=False)
    record = lab_state.load(paths)
    if not record.get("hosts"):
        pytest.fail("the lab stream did not bring the lab up: its first test's error says why", pytrace=False)
    return Lab(paths, record, guest=True)


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    paths = LabPaths.resolve(None)
    if request.config.stash.get(CURRENT_STREAM, "") == "hopper":
        yield _guest_lab(request.config, paths)
        return
    previous = lab_state.load(paths)
    hosts = max(MIN_HOSTS, lab_cycle.gpu_host_count(previous))  # never shrink a lab someone made bigger
    # A lab that was already up stays up afterwards; one this session started is taken down
    # again (CI starts from nothing and must leave no containers or dockerd behind).
    was_up = bool(lab_cycle.status(paths)["containers"])
    marker = lab_up_marker(request.config)
    try:
        record = lab_cycle.up(paths, hosts=hosts)
    except LabError as exc:
        pytest.fail(f"`vllm-fleet-lab up` failed: {exc}", pytrace=False)
    finally:
        if marker:  # the suite stream waits for it (tests/conftest.py), up or not
            marker.touch()
    the_lab = Lab(paths, record, started_here=not was_up)
    yield the_lab
    done = hopper_done_marker(request.config)
    if done and request.config.stash.get(HOPPER_SELECTED, False) and not wait_for(done, 2 * LAB_WAIT_S):
        print(f"the hopper stream did not end within {2 * LAB_WAIT_S} s; taking the lab down anyway")
    if os.environ.get("VLLM_FLEET_LAB_NO_RESET"):
        return
    if not was_up:
        lab_cycle.down(paths)
    elif the_lab._dirty:
        for name in sorted(the_lab._dirty):
            lab_cycle.remove_host(name)
        lab_cycle.up(paths, hosts=hosts)


# --- site.yml on the lab, shared by the modules that need converged hosts ----------------------


@pytest.fixture(scope="session")
def fresh_lab(lab):
    if lab.guest:
        return lab
    # Hosts of a lab this session started are fresh unless a raw-host test dirtied them; a lab
    # that was already up may hold converged hosts from earlier runs.
    lab.recreate(sorted(lab._dirty) if lab.started_here else lab.host_names)
    for name in lab.host_names:  # converged and drilled: rebuilt from scratch after the session
        lab.dirty(name)
    return lab


@pytest.fixture(scope="session")
def first_converge(fresh_lab, tmp_path_factory,
                   request: pytest.FixtureRequest) -> tuple[ansible_runner.Runner | FinishedRun, float]:
    record = converge_record(request.config)
    if fresh_lab.guest:
        if not record or not record.is_file():
            pytest.fail("the lab stream's first converge did not finish: its error is in the lab stream's tests",
                        pytrace=False)
        return FinishedRun.load(record)
    start = time.monotonic()
    r = run_site(fresh_lab.paths.inventory, tmp_path_factory.mktemp("converge"))
    seconds = time.monotonic() - start
    if record:
        FinishedRun.save(record, r, seconds)
    # The other streams wait for this (tests/conftest.py). A converge that raised, or a lab that
    # never came up, ends the lab stream's tests at once, and its session's end lets them go.
    marker = converged_marker(request.config)
    if marker:
        marker.touch()
    return r, seconds


