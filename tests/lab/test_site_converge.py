"""site.yml against the lab, driven through ansible-runner: every group converges, the second run
changes nothing, check mode on converged hosts reports nothing, and a host whose real GPU does
not fit its group stops in preflight with nothing pulled or downloaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.lab.lab_hosts import FALLBACK, H1, REAL_VLLM, ROUTER, SPARK
from tests.lab.site_run import failed_messages, failures, run_site
from vllm_fleet_lab.playbook import run_playbook
from vllm_fleet.serving.profiles import resolve_serving
from vllm_fleet.serving.args import serve_args

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def test_every_group_converges(first_converge, fresh_lab) -> None:
    r, seconds = first_converge
    assert r.rc == 0 and failures(r) == {}, failed_messages(r)
    assert set(r.stats["ok"]) == set(fresh_lab.host_names)
    print(f"first converge of {len(fresh_lab.host_names)} lab hosts: {seconds:.0f} s")


# A run costs about 85 s per host on the 2-CPU controller, so the re-runs take the hosts whose tasks
# differ: the real-vLLM hopper host, spark (its own profile and secrets file) and the fallback host
# (driver branch 570, CUDA 12, two GPUs); the two stand-in hopper hosts run the same tasks as
# those. Check mode takes spark and the fallback host. Both take the router (few tasks): in the
# hopper stream (tests/workers.py), whose host it is, after its router drills (which leave it as
# the converge made it).
RERUN_HOSTS = [pytest.param([SPARK, FALLBACK, REAL_VLLM], id="hosts-3-5"),
               pytest.param([ROUTER], id="router", marks=pytest.mark.hopper)]
CHECK_HOSTS = [pytest.param([SPARK, FALLBACK], id="hosts-3-4"),
               pytest.param([ROUTER], id="router", marks=pytest.mark.hopper)]


@pytest.mark.parametrize("hosts", RERUN_HOSTS)
def test_second_run_changes_nothing(first_converge, fresh_lab, tmp_path, hosts) -> None:
    r = run_site(fresh_lab.paths.inventory, tmp_path, limit=",".join(hosts))
    assert r.rc == 0, failed_messages(r)
    assert sorted(r.stats["ok"]) == sorted(hosts)
    assert {h: n for h, n in r.stats.get("changed", {}).items() if n} == {}


@pytest.mark.parametrize("hosts", CHECK_HOSTS)
def test_check_diff_on_converged_hosts_reports_nothing(first_converge, fresh_lab, tmp_path, hosts) -> None:
    r = run_site(fresh_lab.paths.inventory, tmp_path, check=True, limit=",".join(hosts))
    assert r.rc == 0, failed_messages(r)
    assert sorted(r.stats["ok"]) == sorted(hosts)
    assert {h: n for h, n in r.stats.get("changed", {}).items() if n} == {}


@pytest.mark.hopper
def test_unit_env_and_container(first_converge, fresh_lab) -> None:
    host = fresh_lab.host(H1)
    unit = host.file("/etc/systemd/system/vllm@.service")
    assert unit.exists and "ExecStart=/usr/local/libexec/vllm-fleet/vllm-run /etc/vllm-fleet/%i.args" in unit.content_string
    assert "Restart=on-failure" in unit.content_string
    service = host.service("vllm@main")
    assert service.is_enabled and service.is_running
    env = host.file("/etc/vllm-fleet/main.env")
    assert (env.mode, env.user, env.group) == (0o600, "root", "root")
    assert "HF_HUB_OFFLINE=1" in env.content_string

    inventory = yaml.safe_load((fresh_lab.paths.inventory / "group_vars/all/offline.yml").read_text())
    cfg = resolve_serving("hopper", inventory["vllm_fleet_overrides"])
    inspect = json.loads(host.check_output("docker inspect vllm-main"))[0]
    assert inspect["Config"]["Image"] == f"{cfg['image']['repository']}@{cfg['image']['digest']}"
    assert inspect["Args"] == ["serve", *serve_args(cfg)] or inspect["Config"]["Cmd"] == serve_args(cfg)
    assert inspect["HostConfig"]["Privileged"] is False
    assert "HF_HUB_OFFLINE=1" in inspect["Config"]["Env"]


@pytest.mark.hopper
def test_daemon_json_keeps_the_users_keys(first_converge, fresh_lab) -> None:
    daemon = json.loads(fresh_lab.host(H1).file("/etc/docker/daemon.json").content_string)
    assert daemon["log-driver"] == "json-file"  # seeded by the lab before any role ran
    assert daemon["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"
    runtimes = fresh_lab.host(H1).check_output("docker info --format '{{json .Runtimes}}'")
    assert "nvidia" in json.loads(runtimes)


def test_spark_is_served_with_its_profile_env(first_converge, fresh_lab) -> None:
    env = fresh_lab.host(SPARK).file("/etc/vllm-fleet/main.env").content_string
    for var in ("VLLM_USE_FLASHINFER_MOE_FP4=0", "VLLM_FP8_MOE_BACKEND=flashinfer_cutlass", "FLASHINFER_DISABLE_VERSION_CHECK=1"):
        assert var in env
    # The spark group binds 0.0.0.0, so a key is set: in the root-only secrets file that the
    # container reads, not in the env file docker inspect would show, nor in the unit.
    assert "VLLM_API_KEY=" not in env
    assert fresh_lab.host(SPARK).file("/etc/vllm-fleet/secrets/main/api-key").mode == 0o600
    assert "VLLM_API_KEY" not in fresh_lab.host(SPARK).file("/etc/systemd/system/vllm@.service").content_string


def test_fallback_host_is_a_cuda_12_host_on_driver_570(first_converge, fresh_lab) -> None:
    """Host 4 keeps driver branch 570 (lab config HOST_PLAN): the cuda role pinned that branch and
    installed the CUDA 12 toolkit, and vLLM runs the image its inventory declares a CUDA 12 build."""
    host = fresh_lab.host(FALLBACK)
    assert host.check_output("nvidia-smi --query-gpu=driver_version --format=csv,noheader").splitlines() == ["570.172.08"] * 2
    assert "CUDA Version: 12.8" in host.check_output("nvidia-smi")
    rows = host.check_output("dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Version}\\n'").splitlines()
    # Status "ii " or, once the cuda role held the package, "hi ": the second letter says installed.
    installed = {name: version for status, name, version in (r.split("|") for r in rows) if status[1:2] == "i"}
    assert installed["nvidia-open"].startswith("570.") and installed["nvidia-driver-cuda"] == installed["nvidia-open"]
    assert "nvidia-driver-pinning-570" in installed and "nvidia-driver-pinning-580" not in installed
    assert "cuda-toolkit-12-9" in installed
    assert [n for n in installed if n.startswith("cuda-toolkit-13-")] == []

    host_vars = yaml.safe_load((fresh_lab.paths.inventory / "host_vars" / f"{FALLBACK}.yml").read_text())
    assert host_vars["vllm_fleet_driver_branch"] == 570
    cfg = resolve_serving("fallback", host_vars["vllm_fleet_overrides"])
    assert cfg["image"]["cuda_major"] == 12
    inspect = json.loads(host.check_output("docker inspect vllm-main"))[0]
    assert inspect["Config"]["Image"] == f"{cfg['image']['repository']}@{cfg['image']['digest']}"


def test_wrong_gpu_stops_in_preflight_before_any_download(first_converge, fresh_lab, tmp_path) -> None:
    """The seed's A100 case: the inventory says H100 (so lint passes) but the box has A100s."""
    inventory = tmp_path / "inventory"
    shutil.copytree(fresh_lab.paths.inventory, inventory)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    groups = hosts["all"]["children"]["gpu"]["children"]
    groups["fallback"]["hosts"].pop(FALLBACK)
    groups["hopper"]["hosts"][FALLBACK] = None
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    host_vars = yaml.safe_load((inventory / "host_vars" / f"{FALLBACK}.yml").read_text())
    host_vars["vllm_fleet_gpu"] = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_mib": 81559, "count": 1}
    (inventory / "host_vars" / f"{FALLBACK}.yml").write_text(yaml.safe_dump(host_vars))

    host = fresh_lab.host(FALLBACK)
    host.run("systemctl stop vllm@main; docker rm -f vllm-main; docker image prune -af")
    images_before = host.check_output("docker images -q")
    (tmp_path / "run").mkdir()
    r = run_site(inventory, tmp_path / "run", limit=FALLBACK)
    assert r.rc != 0
    text = " ".join(failed_messages(r))
    assert "compute capability 8.0 is not served by profile 'hopper'" in text
    assert "fallback" in text  # the fix names the group to move to
    assert host.check_output("docker images -q") == images_before == ""


def test_preflight_judges_the_machines_cpu_architecture(first_converge, fresh_lab, tmp_path) -> None:
    """Host 3 sits in spark, whose group says aarch64, but the container is x86_64: without its
    VF102 waiver, preflight stops it, naming the architecture the machine reports."""
    host_vars = yaml.safe_load((fresh_lab.paths.inventory / "host_vars" / f"{SPARK}.yml").read_text())
    waivers = {rule: why for rule, why in host_vars["vllm_fleet_waivers"].items() if rule != "VF102"}
    r = run_playbook("playbooks/preflight.yml", fresh_lab.paths.inventory, tmp_path, limit=SPARK,
                     extravars={"vllm_fleet_waivers": waivers})
    assert r.rc != 0
    assert "VF102: CPU architecture x86_64 is not one profile 'spark' runs on" in " ".join(failed_messages(r))
