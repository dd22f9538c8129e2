"""Lab-owned Docker objects: the network and containers, created once and reused.

A container records a hash of how it was created (label vllm-fleet-lab.spec); `lab up` reuses
a container whose hash matches and recreates one whose recipe changed (e.g. a new base image).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import subprocess
from collections.abc import Sequence

from .config import LABEL, LABEL_ARG, NETWORK
from .proc import LabError, docker, docker_ok, run

SPEC_LABEL = f"{LABEL}.spec"


def _used_networks() -> list[ipaddress.IPv4Network]:
    used: list[ipaddress.IPv4Network] = []
    ids = docker("network", "ls", "-q").split()
    if ids:
        for net in json.loads(docker("network", "inspect", *ids)):
            for cfg in (net.get("IPAM") or {}).get("Config") or []:
                try:
                    used.append(ipaddress.IPv4Network(cfg["Subnet"], strict=False))
                except (KeyError, ValueError):
                    pass
    for line in run(["ip", "-4", "route"], check=False).stdout.splitlines():
        dest = line.split()[0] if line.split() else ""
        if dest and dest != "default":
            try:
                used.append(ipaddress.IPv4Network(dest, strict=False))
            except ValueError:
                pass
    return used


def network_subnet() -> ipaddress.IPv4Network | None:
    if not docker_ok("network", "inspect", NETWORK):
        return None
    info = json.loads(docker("network", "inspect", NETWORK))[0]
    return ipaddress.IPv4Network(info["IPAM"]["Config"][0]["Subnet"])


def ensure_network() -> ipaddress.IPv4Network:
    """The lab's bridge network, on a /24 no other network or route here uses.

    A fixed subnet (not Docker's automatic one) lets containers keep their addresses across
    restarts, so the generated inventory stays valid."""
    existing = network_subnet()
    if existing is not None:
        return existing
    used = _used_networks()
    for third in range(200, 255):
        candidate = ipaddress.IPv4Network(f"172.30.{third}.0/24")
        if not any(candidate.overlaps(u) for u in used):
            break
    else:
        raise LabError("no free 172.30.200-254.0/24 subnet for the lab network; remove unused Docker networks.")
    docker("network", "create", "--driver", "bridge", "--subnet", str(candidate),
           "--label", LABEL_ARG, NETWORK)
    return candidate


def address(subnet: ipaddress.IPv4Network, octet: int) -> str:
    return str(subnet.network_address + octet)


def container_status(name: str) -> str | None:
    out = run(["docker", "inspect", "--format", "{{.State.Status}}", name], check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def container_spec(name: str) -> str | None:
    out = run(["docker", "inspect", "--format", f'{{{{index .Config.Labels "{SPEC_LABEL}"}}}}', name], check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def remove_container(name: str) -> None:
    run(["docker", "rm", "-f", "-v", name], check=False)


def spec_hash(args: Sequence[str]) -> str:
    return hashlib.sha256("\0".join(args).encode()).hexdigest()[:16]


def create_container(name: str, args: Sequence[str], command: Sequence[str] = ()) -> bool:
    """docker create (not start) unless an identical one exists. Returns True when created.

    `args` are docker-create options ending with the image; the lab label and spec hash are added."""
    digest = spec_hash([*args, *command])
    status = container_status(name)
    if status is not None and container_spec(name) == digest:
        return False
    if status is not None:
        remove_container(name)
    docker("create", "--name", name, "--label", LABEL_ARG, "--label", f"{SPEC_LABEL}={digest}",
           *args, *command)
    return True


def start(name: str) -> None:
    if container_status(name) != "running":
        docker("start", name)


def copy_tar_into(name: str, tar_bytes: bytes) -> None:
    """Extract a tar stream at / in a container (works before the container first starts)."""
    proc = subprocess.run(["docker", "cp", "-", f"{name}:/"], input=tar_bytes, capture_output=True)
    if proc.returncode != 0:
        raise LabError(f"copying files into {name} failed: {proc.stderr.decode(errors='replace').strip()}")
