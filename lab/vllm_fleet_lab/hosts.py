"""Lab hosts: systemd containers that Ansible manages over SSH like real GPU machines.

Each host boots systemd as PID 1 (caps from lab-notes: `--privileged` fails on this VM), keeps
/var/lib/docker on a volume so Docker inside the host works, and is seeded before first boot with
the lab's SSH key, its stand-in GPU identity (/etc/nvidia-smi-standin.json) and a Docker
daemon.json that trusts the lab registry (host 1 also carries user keys, to prove that the docker
role and nvidia-ctk merge instead of overwrite).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .arm64 import runtime_kit_tar
from .config import HOST_RUN_ARGS, LABEL_ARG, NETWORK, REGISTRY, REGISTRY_PORT, LabPaths, host_name, host_role
from .docker_objects import copy_tar_into, create_container, start
from .identities import identity_for, write_identity
from .keys import export_public, host_key
from .repos import KERNEL_KEYRING_PATH, kernel_sources
from .proc import LabError, docker, docker_ok, run

IDENTITY_PATH = "etc/nvidia-smi-standin.json"
NVIDIA_SMI_STANDIN = Path(__file__).resolve().parents[2] / "lab" / "nvidia-smi-standin" / "nvidia-smi"
# Keys a site might already have in daemon.json before the docker role runs (host 1 only).
USER_DAEMON_KEYS: dict[str, Any] = {"log-driver": "json-file", "log-opts": {"max-size": "10m"}}


@dataclass(frozen=True)
class LabHost:
    index: int
    name: str
    address: str
    identity: dict[str, Any]


def registry_address() -> str:
    return f"{REGISTRY}:{REGISTRY_PORT}"


def daemon_json(index: int) -> dict[str, Any]:
    config: dict[str, Any] = {"insecure-registries": [registry_address()]}
    if index == 1:
        config.update(USER_DAEMON_KEYS)
    return config


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A tar of root-owned files (path -> (content, mode)); parent dirs come from the image."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, (data, mode) in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, 0, 0, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _seed_files(paths: LabPaths, index: int, identity: dict[str, Any], mirror_url: str) -> dict[str, tuple[bytes, int]]:
    pub = paths.ssh_key.with_suffix(".pub").read_bytes()
    host_private, host_public = host_key(paths, host_name(index))
    files = {
        "root/.ssh/authorized_keys": (pub, 0o600),
        # The host key the lab's known_hosts pins (the image's key unit then makes no other).
        "etc/ssh/ssh_host_ed25519_key": (host_private, 0o600),
        "etc/ssh/ssh_host_ed25519_key.pub": (host_public, 0o644),
        "etc/apt/sources.list.d/vllm-fleet-lab-kernel.sources": (kernel_sources(mirror_url).encode(), 0o644),
        KERNEL_KEYRING_PATH.lstrip("/"): (export_public(paths, "kernel", armor=False), 0o644),
        "etc/docker/daemon.json": (json.dumps(daemon_json(index), indent=2).encode() + b"\n", 0o644),
    }
    if identity["gpus"]:
        files[IDENTITY_PATH] = (json.dumps(identity, indent=2).encode() + b"\n", 0o644)
    if host_role(index).group == "spark":
        # DGX OS ships the driver (vllm-facts: the cuda role verifies it there instead of
        # installing one), so the Spark stand-in comes with its nvidia-smi already in place.
        files["usr/bin/nvidia-smi"] = (NVIDIA_SMI_STANDIN.read_bytes(), 0o755)
    return files


def ensure_host(paths: LabPaths, base_image: str, index: int, address: str, mirror_url: str) -> LabHost:
    name = host_name(index)
    # The router has no GPU, so no stand-in identity either.
    identity = identity_for(host_role(index), name) if host_role(index).gpu_count else {"gpus": []}
    if identity["gpus"]:
        write_identity(identity, paths.identities / f"{name}.json")
    files = _seed_files(paths, index, identity, mirror_url)
    # An arm64 host also gets this machine's amd64 runc, containerd shim and iptables (arm64.py:
    # qemu-user cannot run Docker's own).
    kit = runtime_kit_tar() if host_role(index).emulated else b""
    volume = f"{name}-docker"
    if not docker_ok("volume", "inspect", volume):
        docker("volume", "create", "--label", LABEL_ARG, volume)
    args = [
        *HOST_RUN_ARGS,
        "--network", NETWORK, "--ip", address, "--hostname", name,
        "-v", f"{volume}:/var/lib/docker",
        # Changes to the seeded files (new key, identity) recreate the host via the spec hash.
        "--label", f"vllm-fleet-lab.seed={_content_hash({**files, **({'kit': (kit, 0)} if kit else {})})}",
        base_image,
    ]
    if create_container(name, args):
        copy_tar_into(name, _tar(files))
        if kit:
            copy_tar_into(name, kit)
    start(name)
    return LabHost(index, name, address, identity)


def _content_hash(files: dict[str, tuple[bytes, int]]) -> str:
    h = hashlib.sha256()
    for path, (data, mode) in sorted(files.items()):
        h.update(f"{path}:{mode}:".encode() + data)
    return h.hexdigest()[:16]


def wait_ready(paths: LabPaths, host: LabHost, timeout: float = 90) -> str:
    """Wait until systemd finished booting and sshd accepts the lab key; returns the systemd state."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = run(["docker", "exec", host.name, "systemctl", "is-system-running"], check=False).stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(0.5)
    else:
        raise LabError(f"{host.name} did not finish booting within {timeout:.0f} s (systemd says "
                       f"{state or 'nothing'}); look at `docker logs {host.name}`.")
    while time.monotonic() < deadline:
        ssh = run(["ssh", "-F", paths.ssh_config, "-o", "ConnectTimeout=3", "-o", "BatchMode=yes",
                   host.name, "true"], check=False)
        if ssh.returncode == 0:
            return state
        time.sleep(0.5)
    raise LabError(f"{host.name} booted but sshd at {host.address} did not accept the lab key within "
                   f"{timeout:.0f} s; try `ssh -vF {paths.ssh_config} {host.name}`.")


def wait_all(paths: LabPaths, hosts: list[LabHost]) -> dict[str, str]:
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        # systemd under qemu-user (an arm64 host) boots in 30-60 s on a busy 2-CPU machine.
        states = list(pool.map(lambda h: wait_ready(paths, h, 300 if host_role(h.index).emulated else 90),
                               hosts))
    return {h.name: s for h, s in zip(hosts, states)}
