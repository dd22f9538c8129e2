"""Lab host 4 (fallback, 2x A100) on NVIDIA driver branch 570, the lab's CUDA 12 host, checked
without a lab: the stand-in repository carries the branch, the host's stand-in nvidia-smi reports
it as the 580 captures are laid out, and the generated inventory declares it with the CUDA 12
image, which lint and preflight accept (and VF104 refuses with a CUDA 13 image)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from vllm_fleet_lab import debs
from vllm_fleet_lab import inventory as lab_inventory
from vllm_fleet_lab.config import LabPaths, host_name, host_role
from vllm_fleet_lab.hosts import LabHost
from vllm_fleet_lab.identities import identity_for, write_identity

from vllm_fleet.cli import main
from vllm_fleet.inventory import load_inventory
from vllm_fleet.rules.preflight import preflight_problems
from vllm_fleet.serving.host import plan_host

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "modules"))

import nvidia_gpu_facts as ngf  # noqa: E402

HOST_4 = host_name(4)
STANDIN_SMI = REPO / "lab" / "nvidia-smi-standin" / "nvidia-smi"
CAPTURE = REPO / "tests" / "fixtures" / "nvidia-smi" / "h100-80gb-hbm3" / "nvidia-smi.txt"
TOOLKIT_BY_MAJOR = yaml.safe_load((REPO / "roles/cuda/defaults/main.yml").read_text())["cuda_toolkit_version_by_major"]


@pytest.fixture
def lab_inv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The inventory `lab up` writes for hosts 1-5 (host 5: the stand-in, not real vLLM)."""
    # The real fingerprints need the GPG keys `lab up` makes; lint only needs one to be there.
    monkeypatch.setattr(lab_inventory, "fingerprint", lambda paths, name: "0123456789ABCDEF" * 2 + "01234567")
    hosts = [LabHost(i, host_name(i), f"172.30.200.{10 + i}", identity_for(host_role(i), host_name(i)))
             for i in range(1, 6)]
    return lab_inventory.write_inventory(LabPaths(tmp_path / "lab"), hosts, "sha256:" + "ab" * 32,
                                         hub_endpoint="http://172.30.200.4:8080")


def _lint(inventory: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict]]:
    code = main(["lint", str(inventory), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)["violations"]


def _smi(identity_path: Path, *args: str) -> str:
    env = {**os.environ, "NVIDIA_SMI_STANDIN_IDENTITY": str(identity_path)}
    return subprocess.run([sys.executable, str(STANDIN_SMI), *args], env=env, capture_output=True,
                          text=True, check=True).stdout


def _measured(tmp_path: Path, index: int) -> dict:
    """What preflight's nvidia_gpu_facts module makes of the host's stand-in nvidia-smi."""
    path = tmp_path / f"{host_name(index)}.json"
    write_identity(identity_for(host_role(index), host_name(index)), path)
    gpus = ngf.parse_query_csv(_smi(path, *ngf.query_command()[1:]))
    return ngf.build_facts(gpus, ngf.parse_cuda_version(_smi(path)), None)


def test_the_stand_in_repository_carries_branch_570_beside_580() -> None:
    built = {(d.name, d.version): d for d in debs.expand("cuda", "amd64")}
    for branch, version in (("580", "580.159.04-1"), ("570", "570.172.08-1")):
        pin = built[(f"nvidia-driver-pinning-{branch}", version)]
        src = pin.files[f"/etc/apt/preferences.d/nvidia-driver-pinning-{branch}"]
        text = debs._sub((debs.PACKAGES_DIR / "files" / src["src"]).read_text(), pin.vars)
        assert f"Pin: version {branch}.*\nPin-Priority: 1000\n" in text
        assert pin.conffiles == [f"/etc/apt/preferences.d/nvidia-driver-pinning-{branch}"]
        assert built[("nvidia-open", version)].depends == f"nvidia-driver-cuda (= {version})"
        assert "/usr/bin/nvidia-smi" in built[("nvidia-driver-cuda", version)].files
    # The toolkit the cuda role installs for a CUDA 12 image, and for a CUDA 13 one.
    names = {name for name, _ in built}
    assert {f"cuda-toolkit-{TOOLKIT_BY_MAJOR[12]}", f"cuda-toolkit-{TOOLKIT_BY_MAJOR[13]}"} <= names


def test_host_4_nvidia_smi_reports_driver_570_and_cuda_12_8(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    write_identity(identity_for(host_role(4), HOST_4), path)
    # The header of the 580 capture, with R570's driver and CUDA version in the same columns.
    header = CAPTURE.read_text().splitlines()[2]
    assert _smi(path).splitlines()[2] == header.replace("580.159.04", "570.172.08").replace(
        "CUDA Version: 13.0", "CUDA Version: 12.8")
    assert _smi(path, "--version").splitlines()[:4] == [
        "NVIDIA-SMI version  : 570.172.08", "NVML version        : 570.172",
        "DRIVER version      : 570.172.08", "CUDA Version        : 12.8"]
    facts = _measured(tmp_path, 4)
    assert (facts["driver_branch"], facts["cuda_driver_version"], facts["count"]) == (570, "12.8", 2)
    others = {identity_for(host_role(i), host_name(i))["driver_version"] for i in (1, 2, 3, 5)}
    assert {v.split(".")[0] for v in others} == {"580"}  # their presets' drivers


def test_generated_inventory_declares_570_with_the_cuda_12_image_and_lints_clean(lab_inv: Path, capsys) -> None:
    code, found = _lint(lab_inv, capsys)
    assert [v for v in found if v["severity"] in ("error", "warning")] == [] and code == 0
    hosts = load_inventory([lab_inv]).hosts
    plan = plan_host(hosts[HOST_4].vars)
    image = plan.serving["image"]
    assert plan.driver_branch == 570 and image["cuda_major"] == 12
    assert TOOLKIT_BY_MAJOR[image["cuda_major"]] == "12-9"
    # Still the lab registry's stand-in, by digest, and the stand-in's weight size.
    offline = yaml.safe_load((lab_inv / "group_vars/all/offline.yml").read_text())["vllm_fleet_overrides"]
    assert {k: image[k] for k in offline["image"]} == offline["image"]
    assert plan.serving["model"]["weights_gib"] == 1
    for name in (host_name(1), host_name(2), host_name(5)):
        other = plan_host(hosts[name].vars)
        assert (other.driver_branch, other.serving["image"]["cuda_major"]) == (580, 13)


def test_vf104_refuses_host_4_with_a_cuda_13_image(lab_inv: Path, capsys) -> None:
    path = lab_inv / "host_vars" / f"{HOST_4}.yml"
    host_vars = yaml.safe_load(path.read_text())
    host_vars["vllm_fleet_overrides"]["image"]["cuda_major"] = 13
    path.write_text(yaml.safe_dump(host_vars))
    code, found = _lint(lab_inv, capsys)
    errors = [v for v in found if v["severity"] == "error"]
    assert code != 0 and [(v["rule"], v["host"]) for v in errors] == [("VF104", HOST_4)]
    assert "driver branch 570 is too old for the image's CUDA 13 (needs >= 580)" in errors[0]["message"]


def test_preflight_accepts_host_4_as_its_nvidia_smi_reports_it(lab_inv: Path, tmp_path: Path) -> None:
    host = {"name": HOST_4, "memtotal_mib": 2_000_000, "margin_gib": 1, "image_size_gib": 1,
            "check_driver_branch": True}
    facts = _measured(tmp_path, 4)
    host_vars = load_inventory([lab_inv]).hosts[HOST_4].vars
    assert preflight_problems(plan_host(host_vars), facts, 500 * 2**30, host) == []
    # Declared 580 (the example's fleet-wide branch) against the measured 570: refused.
    problems = preflight_problems(plan_host({**host_vars, "vllm_fleet_driver_branch": 580}), facts, 500 * 2**30, host)
    assert [p.split(":", 1)[0] for p in problems] == ["VF116"]
