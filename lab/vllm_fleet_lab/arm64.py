"""An aarch64 lab host on this x86_64 machine: arm64 binaries run under qemu-user (binfmt_misc).

The DGX Spark is an aarch64 machine; the lab's Spark host runs an arm64 Debian 12 rootfs whose
binaries the kernel hands to qemu-aarch64-static. That needs, once per boot of this machine:

  * binfmt_misc mounted on /proc/sys/fs/binfmt_misc (it is not by default here, and this VM's
    PID 1 is not systemd, so proc-sys-fs-binfmt_misc.automount never mounts it);
  * Debian's qemu-user-static and binfmt-support, whose `qemu-aarch64` entry carries flag F: the
    kernel opens the interpreter when it is registered, so it works inside chroots and containers
    (lab hosts, and Docker inside them) that have no qemu binary of their own.

Docker inside the arm64 host needs more: Debian's docker.io (arm64) installs and dockerd runs
under qemu-user, but three of its helpers cannot:

  * containerd-shim-runc-v2 exits "invalid argument": qemu-user 7.2 answers EINVAL to
    prctl(PR_SET_CHILD_SUBREAPER);
  * runc fails in its C init ("waiting for init preliminary setup: read init-p: connection
    reset by peer");
  * iptables: nft's netlink ("Failed to initialize nft: Protocol not supported") and legacy's
    sockopts ("can't initialize iptables table `nat': iptables who?") are not emulated, so
    dockerd stops ("failed to create NAT chain DOCKER").

The kernel is x86_64, so amd64 builds of these run natively inside the arm64 host: the lab seeds
each arm64 host with this machine's amd64 runc, containerd shim and iptables (nft) and their
libraries under /usr/local (ahead of /usr/bin and /usr/sbin on PATH), see runtime_kit_tar().
dockerd and containerd stay arm64: `docker info` says aarch64 and pulls choose arm64 images,
whose programs the kernel hands to qemu-aarch64 (binfmt flag F) as for any arm64 program.

"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from .hostpkgs import ensure_host_packages
from .proc import LabError, log, run

DPKG_ARCH = "arm64"
UNAME_MACHINE = "aarch64"
OCI_PLATFORM = {"architecture": "arm64", "os": "linux", "variant": "v8"}

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_ENTRY = "qemu-aarch64"
QEMU_STATIC = Path("/usr/bin/qemu-aarch64-static")
PACKAGES = ("qemu-user-static", "binfmt-support")


def native_dpkg_arch() -> str:
    """This machine's Debian architecture (amd64 here)."""
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def parse_binfmt_entry(text: str) -> dict[str, object]:
    """The fields of a /proc/sys/fs/binfmt_misc/<name> file: enabled, interpreter, flags."""
    entry: dict[str, object] = {"enabled": False, "interpreter": "", "flags": ""}
    for line in text.splitlines():
        line = line.strip()
        if line in ("enabled", "disabled"):
            entry["enabled"] = line == "enabled"
        elif line.startswith("interpreter "):
            entry["interpreter"] = line.split(None, 1)[1]
        elif line.startswith("flags:"):
            entry["flags"] = line.split(":", 1)[1].strip()
    return entry


def binfmt_problem(text: str | None) -> str:
    """Why a qemu-aarch64 binfmt entry (its file's text, None when absent) cannot run the
    lab's arm64 hosts; '' when it can."""
    if text is None:
        return f"binfmt_misc has no {BINFMT_ENTRY} entry"
    entry = parse_binfmt_entry(text)
    if not entry["enabled"]:
        return f"the binfmt_misc entry {BINFMT_ENTRY} is disabled"
    if "F" not in str(entry["flags"]):
        return (f"the binfmt_misc entry {BINFMT_ENTRY} (interpreter {entry['interpreter']}) lacks flag F, so "
                "containers without their own qemu binary cannot run arm64 programs")
    return ""


def _binfmt_mounted(binfmt_dir: Path = BINFMT_DIR) -> bool:
    return (binfmt_dir / "register").exists()


def _read_entry(binfmt_dir: Path = BINFMT_DIR) -> str | None:
    try:
        return (binfmt_dir / BINFMT_ENTRY).read_text()
    except FileNotFoundError:
        return None


def ensure_binfmt() -> None:
    """Make this machine run aarch64 binaries (idempotent; quick when all is in place).

    Mounts binfmt_misc if needed, installs qemu-user-static and binfmt-support if missing,
    enables their qemu-aarch64 entry and checks it has flag F and really runs an arm64 program."""
    if not binfmt_problem(_read_entry()) and _binfmt_mounted():
        return
    if os.geteuid() != 0:
        raise LabError("the lab's arm64 (Spark) host needs qemu-user emulation of aarch64 (binfmt_misc and "
                       "qemu-user-static); run `vllm-fleet-lab up` as root once, or set it up by hand.")
    if not _binfmt_mounted():
        log(f"mounting binfmt_misc on {BINFMT_DIR} (for the arm64 host's qemu-user emulation)")
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT_DIR],
            hint="The kernel needs binfmt_misc (`modprobe binfmt_misc`); in a container, mount it on the "
                 "machine that runs Docker instead.")
    missing = [p for p in PACKAGES if not _installed(p)]
    if missing or not QEMU_STATIC.exists():
        ensure_host_packages(missing or ["qemu-user-static"])
    if binfmt_problem(_read_entry()):
        # binfmt-support registers entries in its postinst only when binfmt_misc was mounted then
        # (and at boot through its service, which does not run where PID 1 is not systemd).
        run(["update-binfmts", "--enable", BINFMT_ENTRY], check=False)
    problem = binfmt_problem(_read_entry())
    if problem:
        raise LabError(f"{problem}; the lab's arm64 host needs it enabled with flag F. Remove a foreign "
                       f"registration (`echo -1 > {BINFMT_DIR / BINFMT_ENTRY}`), then run "
                       f"`update-binfmts --enable {BINFMT_ENTRY}` (Debian's qemu-user-static sets F) and retry.")
    log(f"aarch64 emulation ready: {BINFMT_ENTRY} {parse_binfmt_entry(_read_entry() or '')['flags']}")


def _installed(package: str) -> bool:
    out = run(["dpkg-query", "-W", "-f", "${db:Status-Status}", package], check=False)
    return out.returncode == 0 and out.stdout.strip() == "installed"


def check_runs(root: Path) -> str:
    """`uname -m` inside an arm64 tree (a chroot, through binfmt_misc); raises unless aarch64."""
    if shutil.which("chroot") is None:
        raise LabError("`chroot` is missing (coreutils); install it and retry.")
    try:
        out = subprocess.run(["chroot", str(root), "uname", "-m"], capture_output=True, text=True, timeout=60,
                             check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`chroot {root} uname -m` hung; check {BINFMT_DIR / BINFMT_ENTRY}.") from exc
    machine = out.stdout.strip()
    if out.returncode != 0 or machine != UNAME_MACHINE:
        raise LabError(f"`chroot {root} uname -m` gave {machine or out.stderr.strip()!r}, not {UNAME_MACHINE}: "
                       f"aarch64 emulation does not work; check {BINFMT_DIR / BINFMT_ENTRY} (enabled, flags F).")
    return machine


# --- Docker's helpers, amd64, for the arm64 host ------------------------------------------------

KIT_DIR = "usr/local/lib/vllm-fleet-lab/amd64"
KIT_RUNC = f"/{KIT_DIR}/runc"
# This machine's amd64 programs (docker.io's dependencies, so present wherever the lab runs) and
# where they go in the arm64 host: /usr/local/{bin,sbin} come first on PATH there (systemd's
# default PATH, so containerd, dockerd and their children find them before Debian's arm64 ones).
KIT_PROGRAMS: dict[str, str] = {
    "/usr/sbin/runc": KIT_RUNC.lstrip("/"),
    "/usr/bin/containerd-shim-runc-v2": "usr/local/bin/containerd-shim-runc-v2",
    "/usr/sbin/xtables-nft-multi": "usr/local/sbin/xtables-nft-multi",
}
# The iptables names dockerd and the docker role's port guard call (iptables-legacy stays the
# arm64 one: the port guard skips legacy when /proc/net/ip_tables_names has no filter table).
IPTABLES_NAMES: tuple[str, ...] = tuple(
    f"{family}{flavour}{tool}" for family in ("iptables", "ip6tables") for flavour in ("", "-nft")
    for tool in ("", "-save", "-restore"))
XTABLES_DIR = "usr/lib/x86_64-linux-gnu/xtables"  # iptables' extensions (compiled-in path)
AMD64_LIBDIR = "usr/lib/x86_64-linux-gnu"  # the amd64 loader's default search path
AMD64_LOADER = "ld-linux-x86-64.so.2"  # amd64 programs name /lib64/ld-linux-x86-64.so.2

# runc as the shim calls it: Docker's libnetwork prestart hook is /proc/<dockerd pid>/exe, which
# under binfmt_misc is qemu, not dockerd ("qemu: unknown option 'exec-root=/var/run/docker'");
# point it at /usr/sbin/dockerd (binfmt flag P keeps argv0 libnetwork-setkey, which dockerd's
# re-exec dispatches on), then run the amd64 runc.
RUNC_WRAPPER = f"""#!/bin/sh
# vllm-fleet lab (arm64 host under qemu-user): runc is the amd64 build, {KIT_RUNC}
# (runc under qemu-user fails). Docker's libnetwork hook runs /proc/<dockerd pid>/exe, which is
# qemu here, not dockerd: point it at /usr/sbin/dockerd. See vllm_fleet_lab/arm64.py.
prev=
bundle=
for arg in "$@"; do
  case "$prev" in --bundle|-b) bundle=$arg ;; esac
  case "$arg" in --bundle=*) bundle=${{arg#--bundle=}} ;; esac
  prev=$arg
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
  sed -i -E 's#"path":"/proc/[0-9]+/exe"#"path":"/usr/sbin/dockerd"#g' "$bundle/config.json"
fi
exec {KIT_RUNC} "$@"
"""

KIT_README = """vllm-fleet lab: amd64 helpers for Docker in this arm64 host, which runs under qemu-user on an
x86_64 machine. runc, containerd-shim-runc-v2 and iptables cannot run under qemu-user 7.2, so
these amd64 builds (run natively by the x86_64 kernel) stand in for them from /usr/local;
dockerd and containerd are Debian's arm64 ones. Not part of a real DGX Spark. See
lab/vllm_fleet_lab/arm64.py in the vllm-fleet repository.
"""


def shared_libraries(ldd_output: str) -> list[str]:
    """Absolute paths of the libraries `ldd` lists (the loader included, the vDSO not)."""
    found = []
    for line in ldd_output.splitlines():
        match = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(0x", line)
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return found


def _kit_sources(source_root: Path) -> tuple[dict[str, Path], list[Path]]:
    """(destination in the host -> file here) for programs and extensions, and the libraries."""
    files = {dest: source_root / src.lstrip("/") for src, dest in KIT_PROGRAMS.items()}
    for ext in sorted((source_root / XTABLES_DIR).glob("*.so")):
        files[f"{XTABLES_DIR}/{ext.name}"] = ext
    missing = [str(path) for path in files.values() if not path.exists()]
    if missing or not (source_root / XTABLES_DIR).is_dir():
        raise LabError(f"the arm64 host's amd64 Docker helpers come from this machine, which lacks "
                       f"{', '.join(missing) or source_root / XTABLES_DIR}: install docker.io, runc, containerd "
                       "and iptables here (`apt-get install docker.io`).")
    libs: list[Path] = []
    for path in files.values():
        for lib in shared_libraries(run(["ldd", path]).stdout):
            if Path(lib) not in libs:
                libs.append(Path(lib))
    return files, libs


def runtime_kit_tar(source_root: Path = Path("/")) -> bytes:
    """A tar to extract at / in an arm64 lab host before it first starts (hosts.py's
    copy_tar_into): the amd64 runc (behind RUNC_WRAPPER), containerd shim and iptables, with
    the amd64 libraries they load. Deterministic for unchanged sources, so its hash can join a
    host's seed hash."""
    files, libs = _kit_sources(source_root)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int, mtime: float = 0) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, int(mtime)
            tar.addfile(info, io.BytesIO(data))

        def add_link(name: str, target: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
            tar.addfile(info)

        # Only directories a Debian rootfs lacks (/usr/local/{bin,sbin,lib} are there already).
        for directory in ("usr/local/lib/vllm-fleet-lab", KIT_DIR, AMD64_LIBDIR, XTABLES_DIR, "usr/lib64"):
            add_dir(directory)
        add_file(f"{KIT_DIR}/README", KIT_README.encode(), 0o644)
        for dest, src in files.items():
            add_file(dest, src.read_bytes(), 0o755 if not dest.endswith(".so") else 0o644, src.stat().st_mtime)
        for lib in libs:
            real = lib.resolve()
            # Each library under the name programs ask for (the loader resolves no symlinks here).
            add_file(f"{AMD64_LIBDIR}/{lib.name}", real.read_bytes(), 0o755, real.stat().st_mtime)
        add_link(f"usr/lib64/{AMD64_LOADER}", f"../lib/x86_64-linux-gnu/{AMD64_LOADER}")
        add_link("lib64", "usr/lib64")  # usrmerge, as on amd64; an arm64 rootfs has no /lib64
        add_file("usr/local/sbin/runc", RUNC_WRAPPER.encode(), 0o755)
        for name in IPTABLES_NAMES:
            add_link(f"usr/local/sbin/{name}", "xtables-nft-multi")
    return buf.getvalue()
