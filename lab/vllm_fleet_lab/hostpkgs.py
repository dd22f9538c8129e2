"""Debian packages the lab needs on this machine, and the Debian mirror apt already uses here."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from .proc import LabError, log, run

# tool on PATH -> Debian package that provides it
TOOLS: dict[str, str] = {
    "dockerd": "docker.io",
    "debootstrap": "debootstrap",
    "apt-ftparchive": "apt-utils",
    "gpg": "gnupg",
    "dpkg-deb": "dpkg",
    "ssh-keygen": "openssh-client",
    "ssh": "openssh-client",
}

DEFAULT_MIRROR = "http://deb.debian.org/debian"


def ensure_host_packages(packages: list[str]) -> None:
    """apt-get install the given packages (only called with ones that are missing)."""
    if not packages:
        return
    if os.geteuid() != 0:
        raise LabError(f"the lab needs Debian packages {', '.join(packages)}; run as root or install them first.")
    log(f"installing {' '.join(packages)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    hint = "Check that this machine reaches its Debian mirror (apt-get update) and retry."
    run(["apt-get", "update", "-qq"], env=env, hint=hint)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=env, hint=hint)


def ensure_tools(tools: list[str]) -> None:
    missing = sorted({TOOLS[t] for t in tools if shutil.which(t) is None})
    ensure_host_packages(missing)


def debian_mirror() -> str:
    """The Debian archive URL apt uses on this machine (deb822 or one-line sources)."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file() or not path.name.endswith((".list", ".sources")):
            continue
        text = path.read_text(errors="replace")
        for url in re.findall(r"(?:URIs:|^deb(?:\s+\[[^]]*\])?)\s+(\S+)", text, flags=re.M):
            url = url.rstrip("/")
            # The main archive, not -security, -updates-only or third-party repositories.
            if url.endswith("/debian") and "security" not in url:
                return url
    return DEFAULT_MIRROR
