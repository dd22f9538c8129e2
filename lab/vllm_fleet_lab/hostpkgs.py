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


APT_DIR = Path("/etc/apt")


def _apt_source_urls(apt_dir: Path = APT_DIR) -> list[str]:
    """Every archive URL of this machine's apt sources (deb822 .sources and one-line .list)."""
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    urls: list[str] = []
    for path in files:
        if not path.is_file() or not path.name.endswith((".list", ".sources")):
            continue
        text = path.read_text(errors="replace")
        for found in re.findall(r"(?:^URIs:((?:\s+\S+)+)|^deb(?:\s+\[[^]]*\])?\s+(\S+))", text, flags=re.M):
            urls += (found[0] or found[1]).split()
    return [u.rstrip("/") for u in urls]


def debian_mirror(apt_dir: Path = APT_DIR) -> str:
    """The Debian archive apt uses on this machine: the lab builds its hosts from the same one
    (no archive host is written into the lab)."""
    for url in _apt_source_urls(apt_dir):
        # The main archive, not -security or third-party repositories.
        if url.endswith("/debian") and "security" not in url:
            return url
    raise LabError("this machine's apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d) name no Debian "
                   "archive (a URL ending in /debian); the lab builds its hosts from the one apt uses here, so "
                   "add one and run `apt-get update`.")


def debian_security_mirror(apt_dir: Path = APT_DIR) -> str | None:
    """The Debian security archive apt uses here, if it uses one."""
    return next((u for u in _apt_source_urls(apt_dir) if u.endswith("/debian-security")), None)
