"""Host 6 of a lab made with `vllm-fleet-lab up --hosts 6`: a Spark that really is aarch64 (arm64
Debian 12 under qemu-user, lab/vllm_fleet_lab/arm64.py). The same converge as the other hosts
leaves it serving the linux/arm64 child of the stand-in's multi-arch index, pulled by the index
digest, with the toolkit from NVIDIA's sbsa repository layout and no waiver of VF102/VF103.

The default lab (CI) has five hosts: emulation makes this host's converge several times slower
than the others', so these tests skip there and say how to run them."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import yaml
from vllm_fleet_lab.config import ARM64_HOST_INDEX

from tests.lab.lab_hosts import ARM64
from tests.lab.site_run import failures
from vllm_fleet.serving.profiles import resolve_serving

pytestmark = pytest.mark.lab

@pytest.fixture(scope="module")
def arm64(first_converge, fresh_lab):
    if ARM64 not in fresh_lab.host_names:
        pytest.skip(f"the lab has no aarch64 host: `vllm-fleet-lab up --hosts {ARM64_HOST_INDEX}` adds it "
                    "(or `make lab LAB_HOSTS=6`), then run the lab tests")
    return fresh_lab


def _host_spans(r) -> dict[str, float]:
    """Seconds from the run's first event to each host's last task result."""
    times = [(e.get("event_data", {}).get("host"), datetime.fromisoformat(e["created"]))
             for e in r.events if e.get("created")]
    start = min(t for _, t in times)
    spans: dict[str, float] = {}
    for host, t in times:
        if host:
            spans[host] = max(spans.get(host, 0.0), (t - start).total_seconds())
    return spans


def test_the_arm64_spark_converges_with_the_others(arm64, first_converge) -> None:
    r, seconds = first_converge
    assert failures(r) == {} and ARM64 in r.stats["ok"]
    spans = _host_spans(r)
    print("first converge, seconds to each host's last task: "
          + ", ".join(f"{h} {spans[h]:.0f}" for h in sorted(spans)) + f" (whole run {seconds:.0f})")


def test_it_is_an_aarch64_machine_without_a_cpu_waiver(arm64) -> None:
    host = arm64.host(ARM64)
    assert host.check_output("uname -m") == "aarch64"
    assert host.check_output("dpkg --print-architecture") == "arm64"
    host_vars = yaml.safe_load((arm64.paths.inventory / "host_vars" / f"{ARM64}.yml").read_text())
    assert "VF102" not in host_vars["vllm_fleet_waivers"] and "VF103" not in host_vars["vllm_fleet_waivers"]


def test_the_toolkit_came_from_the_sbsa_repository(arm64) -> None:
    host = arm64.host(ARM64)
    sources = host.check_output("cat /etc/apt/sources.list.d/*.sources")
    assert "/compute/cuda/repos/debian12/sbsa/" in sources and "/debian12/x86_64/" not in sources
    rows = host.check_output("dpkg-query -W -f='${Package} ${Architecture}\\n' 'cuda-toolkit-13-*' "
                             "nvidia-container-toolkit docker.io").splitlines()
    arches = dict(row.split() for row in rows)
    assert arches["nvidia-container-toolkit"] == "arm64" and arches["docker.io"] == "arm64"
    toolkit = {p: a for p, a in arches.items() if p.startswith("cuda-toolkit-13-")}
    assert toolkit.get("cuda-toolkit-13-0") == "arm64" and set(toolkit.values()) <= {"arm64", "all"}, toolkit


def test_it_serves_the_arm64_child_of_the_index(arm64) -> None:
    host = arm64.host(ARM64)
    offline = yaml.safe_load((arm64.paths.inventory / "group_vars/all/offline.yml").read_text())
    cfg = resolve_serving("spark", offline["vllm_fleet_overrides"])
    assert sorted(cfg["image"]["platforms"]) == ["linux/amd64", "linux/arm64"]
    ref = f"{cfg['image']['repository']}@{cfg['image']['digest']}"
    inspect = json.loads(host.check_output("docker inspect vllm-main"))[0]
    assert inspect["Config"]["Image"] == ref  # by the index digest, as the inventory pins it
    image = json.loads(host.check_output(f"docker image inspect {inspect['Image']}"))[0]
    assert (image["Os"], image["Architecture"]) == ("linux", "arm64")
    assert host.check_output("docker exec vllm-main uname -m") == "aarch64"
    assert host.file("/etc/vllm-fleet/verified/main.json").exists  # smoke passed and marked it
