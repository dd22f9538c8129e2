"""The lab's base image: Debian 12 with systemd as PID 1, sshd and Python, for every lab container.

Built with debootstrap (no Docker Hub here), customised in the chroot, then `docker import`ed.
The rootfs tarball is cached in the lab dir under a hash of its recipe, so a warm `lab up` (even
after `lab down` removed the image) only re-imports it.

`arch` picks the Debian architecture: amd64 (this machine, every host but the Spark) or arm64
(the Spark host, built with `debootstrap --arch arm64` and run under qemu-user; see arm64.py).
"""

from __future__ import annotations

import hashlib
import os
import json
import shutil
import textwrap
from pathlib import Path

from .config import BASE_IMAGE_REPO, LABEL_ARG, LabPaths
from .hostpkgs import debian_mirror, debian_security_mirror, ensure_tools
from .proc import LabError, docker, docker_ok, log, run

SUITE = "bookworm"
PACKAGES: tuple[str, ...] = (
    "openssh-server", "python3", "systemd", "systemd-sysv", "dbus", "iproute2", "sudo",
    "ca-certificates", "gnupg", "curl", "procps", "less",
    # Ansible's apt module imports python3-apt; deb822_repository imports python3-debian.
    "python3-apt", "python3-debian",
)
# Bump when the customisation below changes, so cached rootfs tarballs are rebuilt.
RECIPE_VERSION = 5  # bump on any change to the customisation below

SSH_HOSTKEYS_UNIT = """\
[Unit]
Description=Generate per-container SSH host keys (vllm-fleet lab)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
"""


NATIVE_ARCH = "amd64"
ARCHES: tuple[str, ...] = ("amd64", "arm64")
# Drop-ins for a rootfs of a foreign architecture (arm64 here), whose systemd (PID 1) and
# services run under qemu-user 7.2. Two sandboxing features of systemd 252 fail there, and the
# units that use them fail at boot, marking the host "degraded" (checked on bookworm arm64):
#   LoadCredential=  -> "Failed to set up credentials: Invalid argument", status 243/CREDENTIALS:
#     systemd-sysusers, systemd-tmpfiles-setup, systemd-tmpfiles-setup-dev at boot,
#     systemd-tmpfiles-clean from its timer 15 min later; procps, systemd-sysctl and
#     systemd-firstboot carry it too (skipped in a container by their conditions).
#   PrivateNetwork=yes -> "Failed to set up network namespacing: Input/output error",
#     status 225/NETWORK: e2scrub_reap at boot; systemd-hostnamed and systemd-localed when
#     D-Bus starts them (so `hostnamectl` and Ansible's hostname module time out).
# Clearing the setting (not masking the unit) lets each unit run as it does on a real arm64
# host; none of them is given a credential in the lab, and the container has its own netns.
_NO_CREDENTIALS = "[Service]\n# vllm-fleet lab: LoadCredential= fails under qemu-user (243/CREDENTIALS).\nLoadCredential=\n"
_NO_PRIVATE_NETWORK = ("[Service]\n# vllm-fleet lab: PrivateNetwork= fails under qemu-user (225/NETWORK).\n"
                       "PrivateNetwork=no\n")
EMULATION_DROPINS: dict[str, str] = {
    **{unit: _NO_CREDENTIALS for unit in (
        "procps.service", "systemd-firstboot.service", "systemd-sysctl.service", "systemd-sysusers.service",
        "systemd-tmpfiles-clean.service", "systemd-tmpfiles-setup-dev.service", "systemd-tmpfiles-setup.service")},
    **{unit: _NO_PRIVATE_NETWORK for unit in (
        "e2scrub_reap.service", "systemd-hostnamed.service", "systemd-localed.service")},
}
EMULATION_DROPIN_NAME = "vllm-fleet-lab-emulation.conf"


def _check_arch(arch: str) -> None:
    if arch not in ARCHES:
        raise LabError(f"the lab builds base images for {', '.join(ARCHES)}, not {arch!r}.")


def recipe(mirror: str, arch: str = NATIVE_ARCH) -> dict[str, object]:
    base: dict[str, object] = {"suite": SUITE, "packages": PACKAGES, "mirror": mirror,
                               "security": debian_security_mirror(), "version": RECIPE_VERSION,
                               "unit": SSH_HOSTKEYS_UNIT}
    # amd64 keeps exactly the recipe (and so the cache key) it had before arm64 existed.
    if arch != NATIVE_ARCH:
        base.update(arch=arch, dropins=EMULATION_DROPINS)
    return base


def image_tag(mirror: str, arch: str = NATIVE_ARCH, repo: str = BASE_IMAGE_REPO) -> str:
    """repo:<recipe hash> for amd64, repo:<arch>-<recipe hash> for another architecture."""
    _check_arch(arch)
    digest = hashlib.sha256(json.dumps(recipe(mirror, arch), sort_keys=True).encode()).hexdigest()
    return f"{repo}:{digest[:12]}" if arch == NATIVE_ARCH else f"{repo}:{arch}-{digest[:12]}"


def _sources(mirror: str, security: str | None) -> str:
    """apt sources for lab hosts: the same Debian archive (and security archive) as here."""
    text = textwrap.dedent(f"""\
        Types: deb
        URIs: {mirror}
        Suites: {SUITE} {SUITE}-updates
        Components: main
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
        """)
    if security:
        text += textwrap.dedent(f"""
            Types: deb
            URIs: {security}
            Suites: {SUITE}-security
            Components: main
            Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
            """)
    return text


def _customise(root: Path, mirror: str, arch: str = NATIVE_ARCH) -> None:
    """Turn the debootstrap tree into something that boots well as a container."""
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(_sources(mirror, debian_security_mirror()))
    # Each container must get its own identity: systemd makes a machine-id when the file is
    # empty, and the unit below makes SSH host keys on first boot.
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/hostname").unlink(missing_ok=True)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    unit = root / "etc/systemd/system/vllm-fleet-lab-ssh-hostkeys.service"
    unit.write_text(SSH_HOSTKEYS_UNIT)
    wants = root / "etc/systemd/system/ssh.service.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / unit.name).symlink_to(f"/etc/systemd/system/{unit.name}")
    # No console in a container: the getty on tty1 only fails and marks the system degraded.
    # apt's daily timers fire right after boot (Persistent=true) and take the dpkg lock just
    # when tests or Ansible run apt; lab hosts don't do unattended apt runs.
    for unit in ("getty@tty1.service", "apt-daily.timer", "apt-daily-upgrade.timer"):
        mask = root / "etc/systemd/system" / unit
        mask.unlink(missing_ok=True)
        mask.symlink_to("/dev/null")
    if arch != NATIVE_ARCH:
        for unit, text in EMULATION_DROPINS.items():
            dropin = root / "etc/systemd/system" / f"{unit}.d"
            dropin.mkdir(parents=True, exist_ok=True)
            (dropin / EMULATION_DROPIN_NAME).write_text(text)
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    # debootstrap leaves its package lists; hosts run apt-get update themselves.
    for lst in (root / "var/lib/apt/lists").glob("*_*"):
        lst.unlink()
    # ...and must know they are stale: apt's cache_valid_time (Ansible) judges freshness by the
    # lists directory's mtime, which the deletion above would make look new.
    os.utime(root / "var/lib/apt/lists", (0, 0))
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below `root`, deepest first (the order to unmount them in)."""
    base = os.path.realpath(root)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with spaces and the like octal-escaped.
        point = line.split()[4].encode().decode("unicode_escape")
        if point == base or point.startswith(base + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_all(root: Path) -> None:
    """Unmount what debootstrap left mounted in its tree (/proc, /sys, /dev/pts when another
    process held one busy as it finished): lazily when a mount is still busy, so the tree can
    be archived or removed. Never follows a mount out of the tree."""
    for point in mounts_under(root):
        if run(["umount", point], check=False).returncode != 0:
            run(["umount", "-l", point], hint=f"{point} stays mounted; unmount it by hand and retry.")
    left = mounts_under(root)
    if left:
        raise LabError(f"{', '.join(map(str, left))} still mounted under {root}; unmount them and retry.")


def remove_tree(root: Path) -> None:
    """Remove a half-built tree of an earlier run, its mounts first."""
    if root.exists():
        log(f"removing the unfinished tree {root} of an earlier run")
        unmount_all(root)
        shutil.rmtree(root)


def build_rootfs_tarball(paths: LabPaths, mirror: str, tag: str, arch: str = NATIVE_ARCH) -> Path:
    """debootstrap + customise + tar, cached by recipe hash. Returns the tarball path."""
    _check_arch(arch)
    tarball = paths.cache / f"rootfs-{tag.rsplit(':', 1)[1]}.tar"
    if tarball.exists():
        return tarball
    ensure_tools(["debootstrap"])
    foreign: list[str] = []
    if arch != NATIVE_ARCH:
        from .arm64 import ensure_binfmt

        ensure_binfmt()
        foreign = [f"--arch={arch}"]
    paths.cache.mkdir(parents=True, exist_ok=True)
    root = paths.cache / ("rootfs.tmp" if arch == NATIVE_ARCH else f"rootfs-{arch}.tmp")
    remove_tree(root)
    took = "about 1-2 minutes" if arch == NATIVE_ARCH else f"about 5 minutes under emulation of {arch}"
    log(f"debootstrap {SUITE} ({arch}) from {mirror} ({took}, once; cached in {paths.cache})")
    run(
        ["debootstrap", *foreign, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, root, mirror],
        hint=f"Details in {root}/debootstrap/debootstrap.log. debootstrap needs the Debian mirror "
             f"{mirror} (check that apt-get update works here) and a lab dir no other `lab up` uses.",
    )
    unmount_all(root)
    if arch != NATIVE_ARCH:
        from .arm64 import check_runs

        check_runs(root)
    _customise(root, mirror, arch)
    partial = tarball.with_suffix(".tar.partial")
    # --one-file-system: a mount that survived inside the tree is never archived.
    run(["tar", "-C", root, "--numeric-owner", "--one-file-system", "-cf", partial, "."])
    partial.rename(tarball)
    remove_tree(root)
    return tarball


def ensure_base_image(paths: LabPaths, arch: str = NATIVE_ARCH, repo: str = BASE_IMAGE_REPO) -> str:
    """Return the base image tag, importing (and if needed building) it.

    An arm64 image is recorded by `docker import` (Docker 20.10) as amd64, whatever it holds; it
    runs all the same (binfmt_misc), but anything built FROM it claims amd64 too (see oci.py)."""
    mirror = debian_mirror()
    tag = image_tag(mirror, arch, repo)
    if docker_ok("image", "inspect", tag):
        return tag
    tarball = build_rootfs_tarball(paths, mirror, tag, arch)
    log(f"importing {tarball.name} as {tag}")
    changes = [
        f"LABEL {LABEL_ARG}",
        "ENV container=docker",
        'CMD ["/sbin/init"]',
    ]
    args: list[str] = []
    for change in changes:
        args += ["-c", change]
    docker("import", *args, str(tarball), tag)
    if not docker_ok("image", "inspect", tag):
        raise LabError(f"docker import of {tarball} did not produce {tag}; delete the tarball and retry.")
    return tag
