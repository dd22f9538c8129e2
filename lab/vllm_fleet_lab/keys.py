"""Per-lab keys: the SSH key Ansible and the tests log in with, the repository signing keys (whose
fingerprints the inventory pins) and the Hugging Face token the Hub stand-in demands.

Keys are made once per lab dir and kept across `lab down`/`lab up`, so inventories and host
keyrings stay valid. They protect nothing but a throw-away lab: never reuse them.
"""

from __future__ import annotations

import os
import secrets
import string
import subprocess
from itertools import pairwise
from pathlib import Path

from .config import LabPaths
from .proc import LabError, run

# One key per upstream, as NVIDIA signs its CUDA and container-toolkit repositories separately.
GPG_KEYS: dict[str, str] = {
    "cuda": "vllm-fleet lab CUDA repository key (test double, not NVIDIA's) <cuda@lab.vllm-fleet.invalid>",
    "toolkit": "vllm-fleet lab container-toolkit repository key (test double, not NVIDIA's) <toolkit@lab.vllm-fleet.invalid>",
    "kernel": "vllm-fleet lab kernel-headers repository key (test double) <kernel@lab.vllm-fleet.invalid>",
}


def ensure_ssh_key(paths: LabPaths) -> Path:
    paths.ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not paths.ssh_key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vllm-fleet-lab", "-f", paths.ssh_key])
    return paths.ssh_key


def host_key(paths: LabPaths, name: str) -> tuple[bytes, bytes]:
    """The SSH host key pair of lab host `name` (private, public), made once and kept, so a host
    recreated by `lab up` keeps its key and the lab's known_hosts stays true."""
    key = paths.ssh_dir / "host-keys" / name / "ssh_host_ed25519_key"
    if not key.exists():
        key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}", "-f", key])
    return key.read_bytes(), key.with_suffix(".pub").read_bytes()


def known_hosts_path(paths: LabPaths) -> Path:
    return paths.ssh_dir / "known_hosts"


def write_ssh_config(paths: LabPaths, hosts: dict[str, str]) -> Path:
    """An ssh_config so `ssh -F <lab>/ssh/config vllm-fleet-lab-1` (and testinfra) just work, with
    host keys checked against the keys the lab seeded (strict: a changed key is refused)."""
    known = known_hosts_path(paths)
    known.write_text("".join(
        f"{name},{addr} {' '.join(host_key(paths, name)[1].decode().split()[:2])}\n" for name, addr in hosts.items()))
    common = (
        "  User root\n"
        f"  IdentityFile {paths.ssh_key}\n"
        "  IdentitiesOnly yes\n"
        "  StrictHostKeyChecking yes\n"
        f"  UserKnownHostsFile {known}\n"
        "  LogLevel ERROR\n"
    )
    blocks = [f"Host {name}\n  HostName {addr}\n{common}" for name, addr in hosts.items()]
    blocks.append(f"Host {' '.join(hosts.values()) or '*'}\n{common}")
    paths.ssh_config.write_text("\n".join(blocks))
    return paths.ssh_config


def _homedir(paths: LabPaths, name: str) -> Path:
    return paths.gnupg / name


def gpg(paths: LabPaths, name: str, *args: str | Path) -> str:
    home = _homedir(paths, name)
    argv = ["gpg", "--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""]
    return run([*argv, *args]).stdout


def ensure_gpg_key(paths: LabPaths, name: str) -> None:
    home = _homedir(paths, name)
    if (home / "done").exists():
        return
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    gpg(paths, name, "--quick-gen-key", GPG_KEYS[name], "ed25519", "sign", "never")
    (home / "done").write_text("")


def fingerprint(paths: LabPaths, name: str) -> str:
    """The primary key fingerprint of lab key `name`: what the lab's inventory pins for the
    repository it signs, as a site pins its own mirror's key (cuda_repo_key_fingerprints, ...)."""
    home = _homedir(paths, name)
    out = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--with-colons", "--list-keys"],
                         check=True, capture_output=True, text=True).stdout
    records = [line.split(":") for line in out.splitlines()]
    for record, following in pairwise(records):
        if record[0] == "pub" and following[0] == "fpr":
            return following[9]
    raise LabError(f"no public key in {home}; remove it and run `vllm-fleet-lab up` again to make a new one.")


def hf_token(paths: LabPaths) -> str:
    """The lab's Hugging Face token: the Hub stand-in demands it for every repo (gated, as on the
    real Hub) and the inventory gives it to the prefetch (vllm_fleet_hf_token). Made once, kept.
    A throw-away lab secret; the security tests look for it everywhere it must not be."""
    path = paths.root / "hf-token"
    if not path.exists():
        paths.root.mkdir(parents=True, exist_ok=True)
        alphabet = string.ascii_letters + string.digits
        path.touch(mode=0o600)
        path.write_text("hf_" + "".join(secrets.choice(alphabet) for _ in range(34)))
    return path.read_text().strip()


def export_public(paths: LabPaths, name: str, armor: bool) -> bytes:
    home = _homedir(paths, name)
    argv = ["gpg", "--homedir", str(home), "--batch", "--export", *(["--armor"] if armor else [])]
    # Binary output when not armoured (the dearmoured keyring apt reads), so no text mode.
    return subprocess.run(argv, check=True, capture_output=True).stdout


def sign_release(paths: LabPaths, name: str, release: Path) -> None:
    """Write InRelease (clear-signed) and Release.gpg (detached) next to `release`."""
    gpg(paths, name, "--clearsign", "-o", release.with_name("InRelease"), release)
    gpg(paths, name, "--armor", "--detach-sign", "-o", release.with_name("Release.gpg"), release)


def stop_gpg_agents(paths: LabPaths) -> None:
    """gpg starts an agent per homedir; stop the lab's so no process outlives `lab up`."""
    for name in GPG_KEYS:
        home = _homedir(paths, name)
        if home.exists():
            run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False)
