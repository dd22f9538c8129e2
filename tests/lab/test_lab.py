"""The lab itself: hosts boot systemd and answer SSH, the mirror's apt repositories are signed
and tampering is refused, the registry serves the vLLM stand-in by digest, and the stand-in GPU
tools (nvidia-smi, nvidia-ctk, the runtime and its hook) behave like the real ones where the
roles look. Needs root and Docker (the `lab up` fixture in conftest.py brings the lab up).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.lab.lab_hosts import FALLBACK, H1, H2, SPARK

from vllm_fleet_lab.keys import fingerprint

pytestmark = pytest.mark.lab

MIRROR = "http://vllm-fleet-lab-mirror"
CUDA_REPO = "compute/cuda/repos/debian12/x86_64"
TOOLKIT_REPO = "libnvidia-container/stable/deb/amd64"


def sh(host, command: str, ok: bool = True):
    """Run a shell command on a lab host; with ok=True a failure shows its output."""
    result = host.run(command)
    if ok:
        assert result.rc == 0, f"{command!r} failed on {host.backend.host}: rc={result.rc}\n{result.stdout}\n{result.stderr}"
    return result


def isolated_apt(host, tag: str, url: str, key_url: str) -> str:
    """Set up apt options that use only one repository, with its own lists and cache under /tmp,
    so tests never change the host's apt configuration. Returns the options for apt-get."""
    d = f"/tmp/lab-apt-{tag}"
    sh(host, f"rm -rf {d} && mkdir -p {d}/lists/partial {d}/cache/archives/partial"
             f" && curl -fsS {key_url} | gpg --dearmor -o {d}/key.gpg"
             f" && echo 'deb [signed-by={d}/key.gpg] {url} /' > {d}/sources.list")
    return (f"-o Dir::Etc::sourcelist={d}/sources.list -o Dir::Etc::sourceparts=- "
            f"-o Dir::State::Lists={d}/lists -o Dir::Cache={d}/cache -o APT::Get::List-Cleanup=0")


def apt_install(host, opts: str, *packages: str):
    return host.run(f"DEBIAN_FRONTEND=noninteractive apt-get {opts} install -y -q {' '.join(packages)}")


@pytest.fixture()
def tampered(lab) -> Iterator[tuple[Path, str]]:
    """A fresh copy of the debian12 CUDA repository inside the mirror, to tamper with."""
    name = f"tampered-{uuid.uuid4().hex[:8]}"
    src = lab.paths.www / CUDA_REPO
    dest = lab.paths.www / name / CUDA_REPO
    shutil.copytree(src, dest)
    yield dest, f"{MIRROR}/{name}/{CUDA_REPO}"
    shutil.rmtree(lab.paths.www / name)


# --- hosts ----------------------------------------------------------------------------------------


# One ssh command per host (a check each costs a round trip): systemd's state, PID 1, the
# hostname, the user, python3, python3-apt and sshd.
BOOT_FACTS = ("systemctl is-system-running; cat /proc/1/comm; hostname; id -un; command -v python3; "
              "dpkg-query -W -f='${Status}\\n' python3-apt; systemctl is-active ssh")


def test_hosts_boot_systemd_and_answer_ssh_with_the_lab_key(lab):
    for name in lab.host_names:
        facts = sh(lab.host(name), BOOT_FACTS, ok=False).stdout.splitlines()
        state, pid1, hostname, user, python3, apt, ssh = facts
        assert state in ("running", "degraded"), (name, facts)
        assert (pid1, hostname, user, ssh) == ("systemd", name, "root", "active"), (name, facts)
        assert python3 and apt == "install ok installed", (name, facts)


def test_second_lab_up_reuses_everything(lab):
    from vllm_fleet_lab import lab as lab_cycle

    started = time.monotonic()
    record = lab_cycle.up(lab.paths, hosts=lab_cycle.gpu_host_count(lab.record))
    assert time.monotonic() - started < 30
    assert record["image_digest"] == lab.record["image_digest"]
    assert [h["address"] for h in record["hosts"]] == [h["address"] for h in lab.record["hosts"]]


def test_a_host_comes_back_from_a_reboot(lab):
    """The cuda role reboots after a driver change: the container restarts (restart policy)."""
    host = lab.host(SPARK)
    pid1_start = sh(host, "awk '{print $22}' /proc/1/stat").stdout.strip()
    try:
        host.run("systemctl reboot")
    except RuntimeError:  # testinfra: ssh exit 255 when the connection drops
        pass
    state, deadline = "", time.monotonic() + 60
    while state not in ("running", "degraded") and time.monotonic() < deadline:
        time.sleep(1)
        try:
            state = host.run("systemctl is-system-running").stdout.strip()
        except RuntimeError:  # down or sshd not up yet
            continue
    assert state in ("running", "degraded")
    assert sh(host, "awk '{print $22}' /proc/1/stat").stdout.strip() != pid1_start


def test_inventory_carries_mirrors_image_and_standin_waivers(lab, tmp_path):
    inv = lab.paths.inventory
    offline = (inv / "group_vars/all/offline.yml").read_text()
    assert f"cuda_repo_base_url: {MIRROR}/compute/cuda/repos" in offline
    assert f"nvidia_container_toolkit_repo_base_url: {MIRROR}/libnvidia-container" in offline
    # The mirror's keys are the lab's own, pinned as a site pins the keys of a mirror that re-signs;
    # the keys the mirror serves are those.
    pinned = yaml.safe_load(offline)
    for variable, key, served in (("cuda_repo_key_fingerprints", "cuda", f"{CUDA_REPO}/3bf863cc.pub"),
                                  ("nvidia_container_toolkit_repo_key_fingerprints", "toolkit", "libnvidia-container/gpgkey")):
        assert pinned[variable] == [fingerprint(lab.paths, key)], variable
        shown = subprocess.run(["gpg", "--batch", "--homedir", str(tmp_path), "--show-keys", "--with-colons",
                                str(lab.paths.www / served)],
                               capture_output=True, text=True, check=True).stdout
        assert f"fpr:::::::::{fingerprint(lab.paths, key)}:" in shown, served
    assert lab.record["image_digest"] in offline
    spark_host = (inv / "host_vars" / f"{SPARK}.yml").read_text()
    waivers = yaml.safe_load(spark_host)["vllm_fleet_waivers"]
    assert sorted(waivers) == ["VF102", "VF113"] and all("lab stand-in" in r for r in waivers.values())
    assert "vllm_fleet_waivers" not in (inv / "host_vars" / f"{H1}.yml").read_text()
    assert SPARK in (inv / "hosts.yml").read_text().split("spark:")[1].split("fallback:")[0]


# --- apt signatures ------------------------------------------------------------------------------


def test_cuda_keyring_and_signed_repo_install_cuda_toolkit(lab):
    host = lab.host(H2)
    lab.dirty(H2)
    sh(host, f"curl -fsSo /tmp/cuda-keyring.deb {MIRROR}/{CUDA_REPO}/cuda-keyring_1.1-1_all.deb"
             " && dpkg -i /tmp/cuda-keyring.deb")
    assert host.file("/usr/share/keyrings/cuda-archive-keyring.gpg").exists
    only = "-o Dir::Etc::sourcelist=sources.list.d/cuda-debian12-x86_64.list -o Dir::Etc::sourceparts=-"
    sh(host, f"apt-get {only} -o APT::Get::List-Cleanup=0 update")
    result = apt_install(host, only, "cuda-toolkit-13-0")
    assert result.rc == 0, result.stdout + result.stderr
    nvcc = sh(host, "/usr/local/cuda-13.0/bin/nvcc --version").stdout
    assert "Cuda compilation tools, release 13.0, V13.0.88" in nvcc
    version = json.loads(host.file("/usr/local/cuda-13.0/version.json").content_string)
    assert version["cuda"]["version"].startswith("13.0.")
    assert "test double" in sh(host, "dpkg-query -W -f='${Description}' cuda-toolkit-13-0").stdout
    assert host.file("/usr/local/cuda").linked_to == "/usr/local/cuda-13.0"


@pytest.mark.parametrize("what", ["InRelease", "Release"])
def test_apt_refuses_a_tampered_release_file(lab, tampered, what):
    repo, url = tampered
    if what == "Release":
        (repo / "InRelease").unlink()  # make apt use Release + Release.gpg
    path = repo / what
    path.write_text(path.read_text().replace("Label: NVIDIA CUDA", "Label: NVIDIA CUDX"))
    host = lab.host(H1)
    opts = isolated_apt(host, f"release-{what}", url, f"{MIRROR}/{CUDA_REPO}/3bf863cc.pub")
    result = host.run(f"apt-get {opts} update")
    assert result.rc != 0
    assert "BADSIG" in result.stdout + result.stderr


def test_apt_refuses_a_repository_signed_with_another_key(lab):
    host = lab.host(H1)
    opts = isolated_apt(host, "wrong-key", f"{MIRROR}/{TOOLKIT_REPO}", f"{MIRROR}/{CUDA_REPO}/3bf863cc.pub")
    result = host.run(f"apt-get {opts} update")
    assert result.rc != 0
    assert "NO_PUBKEY" in result.stdout + result.stderr


def test_apt_refuses_a_tampered_package(lab, tampered):
    repo, url = tampered
    deb = next(repo.glob("cuda-nvcc-13-0_*.deb"))
    data = bytearray(deb.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content: only the hash can tell
    deb.write_bytes(bytes(data))
    host = lab.host(H1)
    opts = isolated_apt(host, "deb", url, f"{url}/3bf863cc.pub")
    sh(host, f"apt-get {opts} update")  # the signed indexes are intact
    result = apt_install(host, opts, "--download-only", "cuda-nvcc-13-0")
    assert result.rc != 0
    assert "Hash Sum mismatch" in result.stdout + result.stderr
    assert not host.file("/usr/local/cuda-13.0/bin/nvcc").exists


# --- stand-in GPU identity -----------------------------------------------------------------------


def test_nvidia_smi_answers_per_host_identity(lab):
    for name in lab.gpu_host_names:
        host = lab.host(name)
        lab.dirty(name)
        # NVIDIA's layout: sbsa for an arm64 host (host 6 of `lab up --hosts 6`).
        arch = next(h.get("arch", "amd64") for h in lab.record["hosts"] if h["name"] == name)
        repo = CUDA_REPO if arch == "amd64" else CUDA_REPO.replace("/x86_64", "/sbsa")
        opts = isolated_apt(host, "driver", f"{MIRROR}/{repo}", f"{MIRROR}/{repo}/3bf863cc.pub")
        sh(host, f"apt-get {opts} update")
        result = apt_install(host, opts, "nvidia-driver-pinning-580", "nvidia-open")
        assert result.rc == 0, result.stdout + result.stderr
        assert sh(host, "dpkg-query -W -f='${Version}' nvidia-open").stdout == "580.159.04-1"
        gpus = lab.identity(name)["gpus"]
        rows = sh(host, "nvidia-smi --query-gpu=name,uuid,compute_cap --format=csv,noheader").stdout.splitlines()
        assert rows == [f"{g['name']}, {g['uuid']}, {g['compute_cap']}" for g in gpus], name
    assert len(lab.identity(FALLBACK)["gpus"]) == 2  # fallback: tensor parallel 2


# --- registry, Docker inside a host, container toolkit ---------------------------------------------


@pytest.fixture(scope="module")
def docker_host(lab):
    """Host 1 with Debian's docker.io (its daemon.json was pre-seeded with user keys)."""
    host = lab.host(H1)
    lab.dirty(H1)
    sh(host, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io")
    sh(host, "systemctl is-active docker")
    return host


def test_pull_the_vllm_standin_by_digest_inside_a_host(lab, docker_host):
    image = lab.record["image"]
    assert "@sha256:" in image
    sh(docker_host, f"docker pull -q {image}")
    digests = sh(docker_host, f"docker image inspect --format '{{{{json .RepoDigests}}}}' {image}").stdout
    assert image in json.loads(digests)


def test_gpus_work_after_the_toolkit_and_nvidia_ctk_keeps_user_keys(lab, docker_host):
    image = lab.record["image"]
    run_smi = f"docker run --rm {{}} --entrypoint nvidia-smi {image} -L"
    # Without nvidia-container-runtime-hook on PATH, dockerd has no `nvidia` device driver.
    result = docker_host.run(run_smi.format("--gpus all"))
    assert result.rc != 0 and "could not select device driver" in result.stderr
    before = json.loads(docker_host.file("/etc/docker/daemon.json").content_string)

    cuda = isolated_apt(docker_host, "gpu-cuda", f"{MIRROR}/{CUDA_REPO}", f"{MIRROR}/{CUDA_REPO}/3bf863cc.pub")
    sh(docker_host, f"apt-get {cuda} update")
    assert apt_install(docker_host, cuda, "nvidia-open").rc == 0
    toolkit = isolated_apt(docker_host, "gpu-toolkit", f"{MIRROR}/{TOOLKIT_REPO}", f"{MIRROR}/libnvidia-container/gpgkey")
    sh(docker_host, f"apt-get {toolkit} update")
    assert apt_install(docker_host, toolkit, "nvidia-container-toolkit").rc == 0
    sh(docker_host, "nvidia-ctk runtime configure --runtime=docker")
    after = json.loads(docker_host.file("/etc/docker/daemon.json").content_string)
    assert after == {**before, "runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}
    sh(docker_host, "systemctl restart docker")

    gpu = lab.identity(H1)["gpus"][0]
    for how in ("--gpus all", "--runtime nvidia -e NVIDIA_VISIBLE_DEVICES=all"):
        out = sh(docker_host, run_smi.format(how)).stdout
        assert f"GPU 0: {gpu['name']} (UUID: {gpu['uuid']})" in out, how
    # No GPU asked for: nothing injected.
    out = sh(docker_host, f"docker run --rm --runtime nvidia --entrypoint sh {image} -c 'command -v nvidia-smi || echo none'").stdout
    assert out.strip() == "none"


def test_nvidia_ctk_merges_an_explicit_config_and_sets_default(lab):
    host = lab.host(H2)
    lab.dirty(H2)
    opts = isolated_apt(host, "ctk", f"{MIRROR}/{TOOLKIT_REPO}", f"{MIRROR}/libnvidia-container/gpgkey")
    sh(host, f"apt-get {opts} update")
    assert apt_install(host, opts, "nvidia-container-toolkit").rc == 0
    start = {"data-root": "/srv/docker", "runtimes": {"crun": {"path": "/usr/bin/crun"}}}
    sh(host, f"echo '{json.dumps(start)}' > /tmp/daemon.json")
    sh(host, "nvidia-ctk runtime configure --runtime=docker --config /tmp/daemon.json --set-as-default")
    merged = json.loads(host.file("/tmp/daemon.json").content_string)
    assert merged == {
        "data-root": "/srv/docker",
        "default-runtime": "nvidia",
        "runtimes": {"crun": {"path": "/usr/bin/crun"},
                     "nvidia": {"args": [], "path": "nvidia-container-runtime"}},
    }
    result = host.run("nvidia-ctk runtime configure --runtime=crio")
    assert result.rc != 0 and "stand-in" in result.stderr
