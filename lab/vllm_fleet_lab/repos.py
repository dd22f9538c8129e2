"""The lab's apt repositories, laid out and signed like NVIDIA's, under the mirror's doc root.

  compute/cuda/repos/<distro>/<arch>/          flat repo + 3bf863cc.pub + cuda-keyring_1.1-1_all.deb
  libnvidia-container/gpgkey                    ascii-armoured key
  libnvidia-container/stable/deb/<dpkg arch>/   flat repo ("deb [signed-by=...] URL/stable/deb/$(ARCH) /")
  lab/kernel/                                   stand-in linux-headers-<this kernel> (see below)

Repositories are flat (`deb URL /`), as NVIDIA's are, so apt-ftparchive builds them; each gets
Release, a clear-signed InRelease and a detached Release.gpg from the per-lab keys.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path

from . import debs, keys
from .config import REPO_ROOT, LabPaths
from .hostpkgs import ensure_tools
from .proc import log, run

# (distro dir, NVIDIA arch dir, dpkg arch). sbsa is NVIDIA's arm64 server layout (DGX Spark):
# debian12/sbsa for the lab's aarch64 Spark host (Debian 12 arm64 under qemu-user; the cuda role
# picks sbsa for aarch64), as NVIDIA publishes it (developer.download.nvidia.com/compute/cuda/repos/debian12/sbsa/).
CUDA_REPOS: tuple[tuple[str, str, str], ...] = (
    ("debian12", "x86_64", "amd64"),
    ("debian12", "sbsa", "arm64"),
    ("ubuntu2404", "x86_64", "amd64"),
    ("ubuntu2404", "sbsa", "arm64"),
)
TOOLKIT_ARCHES: tuple[str, ...] = ("amd64", "arm64")
KEYRING_PATH = "/usr/share/keyrings/cuda-archive-keyring.gpg"
TOOLKIT_KEYRING_PATH = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
# NVIDIA publishes its CUDA key under its short id; the lab's key has another id but keeps the
# file name, so URLs in roles (…/<distro>/<arch>/3bf863cc.pub) work against the mirror unchanged.
CUDA_KEY_FILE = "3bf863cc.pub"


def cuda_repo_dir(www: Path, distro: str, arch_dir: str) -> Path:
    return www / "compute/cuda/repos" / distro / arch_dir


def toolkit_repo_dir(www: Path, dpkg_arch: str) -> Path:
    return www / "libnvidia-container/stable/deb" / dpkg_arch


KERNEL_REPO = "lab/kernel"
# Every lab host runs this VM's kernel, the arm64 one too (qemu-user passes `uname -r` through).
KERNEL_ARCHES: tuple[str, ...] = ("amd64", "arm64")
KERNEL_KEYRING_PATH = "/usr/share/keyrings/vllm-fleet-lab-kernel.gpg"


def kernel_sources(mirror_url: str) -> str:
    """The apt source lab hosts are seeded with, standing in for their Debian mirror's kernel headers."""
    return (f"Types: deb\nURIs: {mirror_url}/{KERNEL_REPO}/\nSuites: /\n"
            f"Signed-By: {KERNEL_KEYRING_PATH}\n")


def _kernel_repo(paths: LabPaths, work: Path) -> None:
    """linux-headers-<running kernel>, empty, in a repo of its own.

    Lab hosts share this VM's kernel, for which Debian has no headers package; the cuda role
    installs linux-headers-$(uname -r) before the driver, as it must on real hosts. On a real
    site the headers come from the distribution mirror; here this stand-in does."""
    release = os.uname().release
    repo = paths.www / KERNEL_REPO
    repo.mkdir(parents=True)
    spec = debs.load_spec()
    note = " ".join(spec["standin_note"].split()) + f" Empty: Debian has no headers for the lab VM's kernel {release}."
    for arch in KERNEL_ARCHES:
        deb = debs.Deb(
            name=f"linux-headers-{release}", version="1.0-lab1", arch=arch,
            summary=f"Header files for Linux {release}",
            files={f"/usr/src/linux-headers-{release}/README.vllm-fleet-lab": {"content": note + "\n"}},
        )
        debs.build(deb, repo, work, spec["maintainer"], note)
    _index(repo, "vllm-fleet-lab", "kernel headers (vllm-fleet lab stand-in)", " ".join(KERNEL_ARCHES))
    keys.sign_release(paths, "kernel", repo / "Release")


def _inputs_hash(paths: LabPaths, mirror_url: str) -> str:
    """Everything the repositories are made from: rebuild only when one of these changes."""
    h = hashlib.sha256(mirror_url.encode() + os.uname().release.encode())
    sources = sorted(p for p in debs.PACKAGES_DIR.rglob("*") if p.is_file())
    sources.append(REPO_ROOT / "lab/nvidia-smi-standin/nvidia-smi")
    sources.append(Path(__file__))
    for path in sources:
        h.update(str(path).encode())
        h.update(path.read_bytes() if path.exists() else b"missing")
    for name in keys.GPG_KEYS:
        h.update(keys.export_public(paths, name, armor=True))
    return h.hexdigest()


def _index(repo: Path, origin: str, label: str, arch: str) -> None:
    """Packages(.gz) and a signed Release for a flat repository directory."""
    packages = run(["apt-ftparchive", "packages", "."], cwd=repo).stdout
    (repo / "Packages").write_text(packages)
    with gzip.open(repo / "Packages.gz", "wt", compresslevel=9) as fh:
        fh.write(packages)
    release = run(
        [
            "apt-ftparchive",
            "-o", f"APT::FTPArchive::Release::Origin={origin}",
            "-o", f"APT::FTPArchive::Release::Label={label}",
            "-o", f"APT::FTPArchive::Release::Architectures={arch}",
            "release", ".",
        ],
        cwd=repo,
    ).stdout
    (repo / "Release").write_text(release)


def _keyring_deb(paths: LabPaths, distro: str, arch_dir: str, repo_url: str, out: Path, work: Path) -> None:
    """cuda-keyring_1.1-1_all.deb as NVIDIA ships it: the keyring plus a source list."""
    deb = debs.Deb(
        name="cuda-keyring",
        version="1.1-1",
        arch="all",
        summary="GPG keyring for the CUDA repository",
        files={
            KEYRING_PATH: {"content": keys.export_public(paths, "cuda", armor=False)},
            f"/etc/apt/sources.list.d/cuda-{distro}-{arch_dir}.list": {
                "content": f"deb [signed-by={KEYRING_PATH}] {repo_url} /\n"
            },
        },
        conffiles=[f"/etc/apt/sources.list.d/cuda-{distro}-{arch_dir}.list"],
    )
    spec = debs.load_spec()
    note = " ".join(spec["standin_note"].split()) + " The keyring holds the lab's own repository key."
    debs.build(deb, out, work, spec["maintainer"], note)


def build_repositories(paths: LabPaths, mirror_url: str) -> bool:
    """(Re)build every repository under paths.www. Returns False when nothing changed."""
    for name in keys.GPG_KEYS:
        keys.ensure_gpg_key(paths, name)
    stamp = paths.www / ".lab-inputs"
    digest = _inputs_hash(paths, mirror_url)
    if stamp.exists() and stamp.read_text() == digest:
        return False
    ensure_tools(["apt-ftparchive", "dpkg-deb"])
    log("building the stand-in packages and signed apt repositories")
    work = paths.root / "build"
    for path in (paths.www / "compute", paths.www / "libnvidia-container", paths.www / "lab", paths.debs, work):
        if path.exists():
            shutil.rmtree(path)
    work.mkdir(parents=True)
    try:
        built: dict[tuple[str, str], list[Path]] = {}
        for repo, arches in (("cuda", {a for _, _, a in CUDA_REPOS}), ("toolkit", set(TOOLKIT_ARCHES))):
            for arch in sorted(arches):
                built[(repo, arch)] = debs.build_repo_debs(repo, arch, paths.debs / repo / arch, work)

        cuda_key = keys.export_public(paths, "cuda", armor=True)
        for distro, arch_dir, arch in CUDA_REPOS:
            repo = cuda_repo_dir(paths.www, distro, arch_dir)
            repo.mkdir(parents=True)
            for deb in built[("cuda", arch)]:
                shutil.copy2(deb, repo)
            url = f"{mirror_url}/compute/cuda/repos/{distro}/{arch_dir}/"
            _keyring_deb(paths, distro, arch_dir, url, repo, work)
            (repo / CUDA_KEY_FILE).write_bytes(cuda_key)
            _index(repo, "vllm-fleet-lab", "NVIDIA CUDA (vllm-fleet lab stand-in)", arch)
            keys.sign_release(paths, "cuda", repo / "Release")

        top = paths.www / "libnvidia-container"
        for arch in TOOLKIT_ARCHES:
            repo = toolkit_repo_dir(paths.www, arch)
            repo.mkdir(parents=True)
            for deb in built[("toolkit", arch)]:
                shutil.copy2(deb, repo)
            _index(repo, "vllm-fleet-lab", "libnvidia-container (vllm-fleet lab stand-in)", arch)
            keys.sign_release(paths, "toolkit", repo / "Release")
        (top / "gpgkey").write_bytes(keys.export_public(paths, "toolkit", armor=True))
        _kernel_repo(paths, work)
        # The list file nvidia.github.io publishes for copy-paste installs.
        (top / "stable/deb/nvidia-container-toolkit.list").write_text(
            f"deb [signed-by={TOOLKIT_KEYRING_PATH}] {mirror_url}/libnvidia-container/stable/deb/$(ARCH) /\n"
        )
    finally:
        keys.stop_gpg_agents(paths)
        shutil.rmtree(work, ignore_errors=True)
    stamp.write_text(digest)
    return True
