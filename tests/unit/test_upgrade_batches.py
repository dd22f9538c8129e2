"""upgrade.yml and rollback.yml refuse, before any batch and before they contact a host, batches
that would drain every host behind a routed model (the availability benchmark's batch of 2: 830 of 1,901
requests through the router failed). Its batches are Ansible's own for the play's serial."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import ansible_runner
import pytest
import yaml
from ansible.executor.playbook_executor import PlaybookExecutor

from tests.collection import REPO, plugin

HOSTS = ["h1", "h2", "h3", "h4", "h5"]
GUARD = "Check that no batch holds every host behind a routed model"
# Nothing listens on port 9: a play that gets past the guard fails at once, at the first host.
UNREACHABLE = {"ansible_host": "127.0.0.1", "ansible_port": 9}
FLEET_VARS = {"vllm_fleet_profile": "hopper", "vllm_fleet_cpu_arch": "x86_64", "vllm_fleet_driver_branch": 580,
              "vllm_fleet_gpu": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0",
                                 "memory_mib": 81559, "count": 1},
              "vllm_fleet_api_key": "k" * 24, "vllm_fleet_bind_address": "0.0.0.0"}


@pytest.mark.parametrize("serial", [1, 2, "2", "40%", "100%", "0", [1, 2], [1, "50%", 3], ["10%"]])
def test_batches_are_the_ones_ansible_makes(serial: Any) -> None:
    ours = plugin("filter", "fleet").serial_batches(HOSTS, serial)
    play = SimpleNamespace(hosts="all", order=None, serial=serial if isinstance(serial, list) else [serial])
    executor = SimpleNamespace(_inventory=SimpleNamespace(get_hosts=lambda pattern, order: list(HOSTS)))
    assert ours == PlaybookExecutor._get_serialized_batches(executor, play)


def _run(tmp_path: Path, playbook: str, inventory_vars: dict[str, Any] | None = None,
         router_vars: dict[str, Any] | None = None, **extravars: Any) -> ansible_runner.Runner:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        "hopper": {"hosts": {"h1": UNREACHABLE, "h2": UNREACHABLE}, "vars": {**FLEET_VARS, **(inventory_vars or {})}},
        "routers": {"hosts": {"r1": {**UNREACHABLE, "vllm_fleet_router": {}, **(router_vars or {})}}}}}}))
    # `-e key=value`, as a user types it: Ansible hands every value over as a string.
    cmdline = " ".join(f"-e {k}={v}" for k, v in extravars.items())
    (tmp_path / "run").mkdir()
    return ansible_runner.run(private_data_dir=str(tmp_path / "run"), playbook=str(REPO / "playbooks" / playbook),
                              inventory=str(inventory), cmdline=cmdline, quiet=True,
                              envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                                       "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"})


def _results(r: ansible_runner.Runner) -> list[tuple[str, str]]:
    return [(e["event"], e["event_data"].get("task", "")) for e in r.events
            if e["event"] in ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")]


@pytest.mark.parametrize("playbook", ["upgrade.yml", "rollback.yml"])
def test_a_batch_of_both_routed_hosts_is_refused_before_any_host_is_contacted(tmp_path: Path, playbook: str) -> None:
    r = _run(tmp_path, playbook, vllm_fleet_upgrade_serial=2)
    assert r.rc != 0
    [failed] = [e["event_data"] for e in r.events if e["event"] == "runner_on_failed"]
    assert failed["task"] == GUARD, failed["task"]
    assert failed["res"]["msg"].startswith("a batch of 2 hosts (h1, h2) holds every host behind "), failed["res"]["msg"]
    assert "router r1 (h1, h2)" in failed["res"]["msg"]
    # Nothing after the guard ran: no host was gathered, locked or drained.
    assert _results(r)[-1] == ("runner_on_failed", GUARD)
    assert not any(event == "runner_on_unreachable" for event, _ in _results(r))


@pytest.mark.parametrize("extravars", [{}, {"vllm_fleet_upgrade_serial": 2, "vllm_fleet_upgrade_allow_full_drain": "true"}],
                         ids=["one-host-a-batch", "outage-accepted"])
def test_other_batches_go_past_the_guard(tmp_path: Path, extravars: dict[str, Any]) -> None:
    r = _run(tmp_path, "upgrade.yml", **extravars)
    guard = [event for event, task in _results(r) if task == GUARD]
    assert guard == (["runner_on_skipped"] if extravars else ["runner_on_ok"])
    # The upgrade play started: it failed at the unreachable hosts, not at the guard.
    assert ("runner_on_unreachable", "Gathering Facts") in _results(r)


VALIDATE = "Check the hosts against vllm-fleet's schema and serving rules"


@pytest.mark.parametrize("where", ["inventory_vars", "router_vars"], ids=["fleet-group", "router"])
def test_a_serial_in_the_inventory_stops_the_run_before_the_guard(tmp_path: Path, where: str) -> None:
    """Ansible never reads a play's serial from the inventory: the play would go one host a
    batch while the guard, reading host variables, judged batches of 2. Validation stops it
    first (VF005), naming the -e that does what the inventory meant; on a router as well."""
    r = _run(tmp_path, "upgrade.yml", **{where: {"vllm_fleet_upgrade_serial": 2}})
    assert r.rc != 0
    [failed] = [e["event_data"] for e in r.events if e["event"] == "runner_on_failed"]
    assert failed["task"] == VALIDATE, failed["task"]
    assert "error VF005" in failed["res"]["msg"] and "-e vllm_fleet_upgrade_serial=2" in failed["res"]["msg"]
    assert GUARD not in [task for _, task in _results(r)]


def test_the_same_serial_given_with_e_is_where_ansible_reads_it(tmp_path: Path) -> None:
    r = _run(tmp_path, "upgrade.yml", inventory_vars={"vllm_fleet_upgrade_serial": 2}, vllm_fleet_upgrade_serial=2)
    assert ("runner_on_ok", VALIDATE) in _results(r)
    assert _results(r)[-1] == ("runner_on_failed", GUARD)  # batches of 2 now: the guard's to refuse
