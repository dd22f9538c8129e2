"""The lab recovers by itself from what an interrupted or unlucky `lab up` leaves behind, and
builds its hosts from the Debian archive this machine's apt already uses."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from vllm_fleet_lab.baseimage import mounts_under, remove_tree
from vllm_fleet_lab.hostpkgs import debian_mirror, debian_security_mirror
from vllm_fleet_lab.proc import LabError


def test_mirror_comes_from_the_machines_apt_sources(tmp_path: Path) -> None:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text("deb https://packages.cloud.google.com/apt cloud-sdk main\n")
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example.net/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example.net/debian-security\nSuites: bookworm-security\n")
    assert debian_mirror(apt) == "http://mirror.example.net/debian"
    assert debian_security_mirror(apt) == "http://mirror.example.net/debian-security"
    (apt / "sources.list.d" / "debian.sources").unlink()
    with pytest.raises(LabError, match="name no Debian archive"):
        debian_mirror(apt)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_half_built_tree_with_a_busy_mount_is_cleaned(tmp_path: Path) -> None:
    """What a first `lab up` met: debootstrap's /proc still mounted (busy) in its tree. The next
    run unmounts it (lazily while busy) and removes the tree, and never walks the mount."""
    root = tmp_path / "rootfs.tmp"
    proc_dir = root / "proc"
    proc_dir.mkdir(parents=True)
    (root / "etc").mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(proc_dir)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount here: {mounted.stderr.decode().strip()}")
    busy = subprocess.Popen(["sleep", "30"], cwd=proc_dir)  # holds the mount busy
    try:
        assert mounts_under(root) == [proc_dir]
        remove_tree(root)
        assert not root.exists()
        assert mounts_under(root) == []
    finally:
        busy.kill()
        busy.wait()
        subprocess.run(["umount", "-l", str(proc_dir)], capture_output=True)
