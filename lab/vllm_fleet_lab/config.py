"""Names, paths and the host plan of the lab. Everything the lab creates is named here.

Every Docker object carries the label `vllm-fleet-lab=1` and a `vllm-fleet-lab` name prefix, so
`lab down` can remove exactly what the lab created and nothing else on this machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

LABEL = "vllm-fleet-lab"
LABEL_ARG = f"{LABEL}=1"
PREFIX = "vllm-fleet-lab"
NETWORK = PREFIX
MIRROR = f"{PREFIX}-mirror"
REGISTRY = f"{PREFIX}-registry"
REGISTRY_VOLUME = f"{PREFIX}-registry-data"
HUB = f"{PREFIX}-hub"
BASE_IMAGE_REPO = f"{PREFIX}/debian12-systemd"
STANDIN_IMAGE_NAME = "vllm-standin"
STANDIN_VLLM_VERSION = "0.28.0"
REGISTRY_PORT = 5000
MIRROR_PORT = 80
HUB_PORT = 8080

# Addresses inside the lab network: fixed so inventories and pinned URLs survive restarts.
MIRROR_HOST_OCTET = 2
REGISTRY_HOST_OCTET = 3
HUB_HOST_OCTET = 4
FIRST_HOST_OCTET = 11

# The upstream URLs an air-gapped site replaces with its mirror (the inventory variables).
UPSTREAM_CUDA_REPO = "https://developer.download.nvidia.com/compute/cuda/repos"
UPSTREAM_TOOLKIT_REPO = "https://nvidia.github.io/libnvidia-container"
UPSTREAM_HF_ENDPOINT = "https://huggingface.co"

# Capabilities that boot systemd here: `--privileged` fails on this VM ("unable to apply caps")
# because the VM itself lacks CAP_SYS_RESOURCE.
HOST_RUN_ARGS: tuple[str, ...] = (
    "--cap-add", "ALL",
    "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "apparmor=unconfined",
    "--security-opt", "seccomp=unconfined",
    # `reboot` inside a host ends PID 1 and the container; Docker starts it again, so a host
    # comes back from a reboot (the cuda role reboots after a driver change).
    "--restart", "unless-stopped",
    # systemd halts cleanly on SIGRTMIN+3 (docker import cannot set STOPSIGNAL).
    "--stop-signal", "SIGRTMIN+3",
    "--tmpfs", "/run",
    "--tmpfs", "/run/lock",
    "--tmpfs", "/tmp",
    # rw, not ro: the nested dockerd inside a lab host creates cgroups for its containers.
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
)


@dataclass(frozen=True)
class HostRole:
    """What one lab host stands in for: its inventory group and stand-in GPU identity."""

    group: str
    profile: str
    identity: str  # preset file stem under lab/nvidia-smi-standin/identities/
    gpu_count: int  # GPUs the host must show; >1 makes a multi-GPU variant of a 1-GPU preset
    # Rules the host waives in the generated inventory (vllm_fleet_waivers), with the reason:
    # what a container on this VM cannot be of the machine it stands in for.
    waivers: tuple[tuple[str, str], ...] = ()
    # NVIDIA driver branch of the host (driver_branches in lab/packages/packages.yml); None: the
    # example inventory's fleet-wide vllm_fleet_driver_branch (580).
    driver_branch: int | None = None
    # Debian architecture of the host's rootfs: amd64 (this machine's), or arm64, whose programs
    # run under qemu-user (arm64.py).
    arch: str = "amd64"

    @property
    def emulated(self) -> bool:
        """Its programs run under qemu-user: it needs binfmt_misc, the arm64 base image and the
        amd64 runtime kit, and boots several times slower."""
        return self.arch != "amd64"


# The stand-in GB10 is an x86_64 container in a VM with ~24 GB of memory, not a 128 GB aarch64
# DGX Spark: its inventory (group spark) says what a Spark is, and these two rules are waived.
SPARK_STANDIN_WAIVERS = (
    ("VF102", "lab stand-in: an x86_64 container stands in for the aarch64 DGX Spark"),
    ("VF113", "lab stand-in: the container shares the lab VM's memory, not a GB10's 128 GB"),
)


# Host N takes HOST_PLAN[(N-1) % len] (host 6: ARM64_SPARK, below). The fallback profile serves BF16 with tensor parallel 2,
# so host 4 shows two A100 80GB cards (the lab writes a 2-GPU variant of the A100 preset). Host 4
# also stays on driver branch 570, as a site that has not moved to 580 does: R570 runs CUDA 12 but
# not CUDA 13, so the host serves the CUDA 12 build of the image and the lab covers that path
# (toolkit 12-9, lint VF104, preflight's driver branch).
HOST_PLAN: tuple[HostRole, ...] = (
    HostRole("hopper", "hopper", "h100-80gb-hbm3", 1),
    HostRole("hopper", "hopper", "h200", 1),
    HostRole("spark", "spark", "gb10", 1, SPARK_STANDIN_WAIVERS),
    HostRole("fallback", "fallback", "a100-80gb", 2, driver_branch=570),
)
GROUPS: tuple[str, ...] = ("hopper", "blackwell", "spark", "fallback")
# The lab host that serves REAL vLLM (the CPU build, lab/real-vllm) instead of the stand-in:
# host 5, a fifth hopper host (H100 identity), so the drills and upgrade tests on hosts 1-4 keep
# their fast stand-ins. `lab up --real-vllm-host 0` leaves it out.
REAL_VLLM_HOST_INDEX = 5
# Host 6 (`vllm-fleet-lab up --hosts 6`) is a Spark that really is aarch64: an arm64 Debian 12
# under qemu-user, so VF102/VF103 need no waiver there; the memory comparison still does. Not in
# the default lab: emulation makes its converge several times slower than the others'.
ARM64_HOST_INDEX = 6
ARM64_SPARK = HostRole("spark", "spark", "gb10", 1, (SPARK_STANDIN_WAIVERS[1],), arch="arm64")


# The router (`lab up` makes it unless --no-router): a host without GPUs in group `router`, with
# HAProxy in front of the hosts of group `routed`: hosts 1 and 2, the hopper stand-ins, which the
# lab binds on all addresses behind their proxies, with the key. One profile, so one model with
# one context length behind the router's one address (the Spark serves the same model with a
# shorter one: lint warns about such a mix, VF502), and the upgrade drill drains both in turn.
ROUTER_HOST_INDEX = 0
ROUTER_HOST_OCTET = 10
ROUTER = HostRole("router", "", "", 0)
ROUTED_GROUP = "routed"
ROUTED_HOST_INDEXES = (1, 2)

# The fault drills' hosts (tests/lab/test_fault_drills.py), group `drills`: their watchdog probes
# every 5 s, so a drill need not wait minutes. The other hosts keep the role's 30 s: each probe
# is a completion, and on the real-vLLM host one completion keeps vLLM's CPU worker spinning for
# about a second (its shared-memory queue busy-loops 1 s after each read), 0.17 cores at 5 s.
DRILL_GROUP = "drills"
DRILL_HOST_INDEXES = (1, 2)


def router_manifest_path() -> str:
    """Where the router role writes its manifest (router_manifest_path, read from its defaults,
    which the lab's inventory does not change)."""
    defaults = yaml.safe_load((REPO_ROOT / "roles" / "router" / "defaults" / "main.yml").read_text())
    return str(defaults["router_manifest_path"])


def host_name(index: int) -> str:
    return f"{PREFIX}-router" if index == ROUTER_HOST_INDEX else f"{PREFIX}-{index}"


def host_role(index: int) -> HostRole:
    if index == ROUTER_HOST_INDEX:
        return ROUTER
    if index == ARM64_HOST_INDEX:
        return ARM64_SPARK
    return HOST_PLAN[(index - 1) % len(HOST_PLAN)]


@dataclass(frozen=True)
class LabPaths:
    """Everything the lab keeps on disk lives under one directory (default <repo>/.lab)."""

    root: Path

    @classmethod
    def resolve(cls, lab_dir: str | os.PathLike[str] | None) -> "LabPaths":
        chosen = lab_dir or os.environ.get("VLLM_FLEET_LAB_DIR") or REPO_ROOT / ".lab"
        return cls(Path(chosen).expanduser().resolve())

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def cache(self) -> Path:
        """Survives `lab down`: the debootstrap rootfs tarball and downloaded .debs."""
        return self.root / "cache"

    @property
    def dockerd_pid(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def dockerd_log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def ssh_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def ssh_config(self) -> Path:
        return self.ssh_dir / "config"

    @property
    def gnupg(self) -> Path:
        return self.root / "gnupg"

    @property
    def debs(self) -> Path:
        return self.root / "debs"

    @property
    def www(self) -> Path:
        """The mirror's document root, bind-mounted read-only into the mirror container."""
        return self.root / "mirror"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory"

    @property
    def run_vars(self) -> Path:
        """Extra vars for every playbook run on the lab (`-e @<this>`): play keywords such as
        serial are templated before any inventory variable exists."""
        return self.root / "run-vars.yml"

    @property
    def identities(self) -> Path:
        return self.root / "identities"

    @property
    def registry_dir(self) -> Path:
        return self.root / "registry"

    @property
    def hub(self) -> Path:
        """The Hugging Face Hub stand-in's repositories (<org>/<name>/), mounted read-only."""
        return self.root / "hub"
