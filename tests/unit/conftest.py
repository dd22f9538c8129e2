"""Session fixture `rendered`: the vllm role's files for every case of tests/unit/vllm_render.py,
written by one real ansible-playbook run of render.yml into a temporary tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit import contract_hosts
from tests.unit.vllm_render import (ANSIBLE_PLAYBOOK, API_KEY, CASES, FAKE_DOCKER, REPO,
                                    _case_profile, _instances, _unified)


def _paths(out: Path) -> dict[str, str]:
    """Role variables that put a host's rendered files under `out` and keep its units unmanaged."""
    for sub in ("etc", "unit", "libexec", "cache"):
        (out / sub).mkdir(parents=True)
    fake = out / "docker"
    fake.write_text(FAKE_DOCKER.format(python=sys.executable, out=str(out / "argv.json")))
    fake.chmod(0o755)
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "vllm_config_dir": str(out / "etc"),
        "vllm_unit_dir": str(out / "unit"),
        "vllm_wrapper_path": str(out / "libexec" / "vllm-run"),
        "vllm_hf_cache_dir": str(out / "cache"),
        "vllm_docker_bin": str(fake),
        "vllm_file_owner": Path.home().owner() if os.geteuid() != 0 else "root",
        "vllm_file_group": Path.home().group() if os.geteuid() != 0 else "root",
        "vllm_manage_service": False,
    }


def _contract_play(name: str, hosts: str, tasks: list[dict]) -> dict:
    """A play of render.yml: the contract mapping the collection's playbooks use (inventory ->
    role variables), no facts."""
    return {"name": name, "hosts": hosts, "gather_facts": False,
            "vars_files": [str(REPO / "playbooks" / "vars" / "contract.yml")], "tasks": tasks}


@pytest.fixture(scope="session")
def contract(tmp_path_factory) -> tuple[Path, list[str], Path]:
    """The contract inventory (example + generated hosts) and where each host's files are rendered."""
    base = tmp_path_factory.mktemp("contract")
    inventory, names = contract_hosts.write(base / "inventory")
    return inventory, names, base / "out"


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, contract) -> dict[str, Path]:
    """The role's files of every case and every contract host, from one ansible-playbook run."""
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip("ansible-playbook is not installed next to this Python")
    base = tmp_path_factory.mktemp("vllm-unit")
    contract_inventory, contract_names, contract_out = contract
    # The contract hosts keep the variables Ansible resolves from their own inventory; this extra
    # source only adds where their files go (and the vault value the example refers to).
    routers = {name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                      "router_out": str(contract_out / name)} for name in contract_hosts.routers(contract_inventory)}
    for spec in routers.values():
        Path(spec["router_out"]).mkdir(parents=True)
    (base / "contract-paths.yml").write_text(yaml.safe_dump({"all": {
        "vars": {"vault_vllm_fleet_api_key": contract_hosts.CONTRACT_KEY},
        "hosts": {**{name: _paths(contract_out / name) for name in contract_names}, **routers}}}))
    hosts = {}
    for case, spec in CASES.items():
        out = base / case
        gpu_count, instances = _instances(_case_profile(case))
        hosts[f"case-{case}"] = {
            **_paths(out),
            "vllm_fleet_profile": _case_profile(case),
            "vllm_fleet_overrides": spec.get("overrides", {}),
            "vllm_fleet_gpu": {"count": gpu_count, "unified_memory": _unified(case)},
            "vllm_fleet_cpu_arch": "x86_64",
            "vllm_fleet_driver_branch": 580,
            "vllm_fleet_instances": instances,
            "vllm_fleet_bind_address": "0.0.0.0",
            "vllm_fleet_api_key": API_KEY,
        }
    inventory = base / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    playbook = base / "render.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                _contract_play("Render the vllm role's files", "all:!router", [
                    {"name": "Check the serving configuration", "ansible.builtin.include_role": {
                        "name": "vllm_fleet.fleet.vllm", "tasks_from": "assert.yml"}},
                    {"name": "Render", "ansible.builtin.include_role": {
                        "name": "vllm_fleet.fleet.vllm", "tasks_from": "render.yml"}},
                ]),
                _contract_play("Render the router's configuration", "router", [
                    {"name": "Plan", "ansible.builtin.include_role": {
                        "name": "vllm_fleet.fleet.router", "tasks_from": "plan.yml", "public": True}},
                    {"name": "Render", "ansible.builtin.template": {
                        "src": str(REPO / "roles" / "router" / "templates" / "haproxy.cfg.j2"),
                        "dest": "{{ router_out }}/haproxy.cfg", "mode": "0644"}},
                ]),
            ]
        )
    )
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_LOCALHOST_WARNING="0")
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), "-i", str(contract_inventory),
         "-i", str(base / "contract-paths.yml"), str(playbook)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    for key in (API_KEY, contract_hosts.CONTRACT_KEY):
        assert key not in proc.stdout + proc.stderr, "an API key leaked into Ansible's output"
    return {case: base / case for case in CASES}
