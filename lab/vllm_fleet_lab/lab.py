"""`lab up`, `lab down` and `lab status`: the lab's life cycle."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import oci
from . import state as lab_state
from .arm64 import DPKG_ARCH, ensure_binfmt
from .baseimage import ensure_base_image
from .config import (FIRST_HOST_OCTET, HUB, HUB_HOST_OCTET, LABEL_ARG, MIRROR, MIRROR_HOST_OCTET,
                     NETWORK, PREFIX, REAL_VLLM_HOST_INDEX, REGISTRY, REGISTRY_HOST_OCTET, REPO_ROOT,
                     ROUTER_HOST_INDEX, ROUTER_HOST_OCTET,
                     STANDIN_IMAGE_NAME, STANDIN_VLLM_VERSION, LabPaths, host_name, host_role)
from .docker_objects import address, container_status, ensure_network, network_subnet, remove_container
from .engine import engine_answers, ensure_engine, lab_dockerd_pid, stop_engine
from .hostpkgs import ensure_tools
from .hosts import LabHost, ensure_host, registry_address, wait_all
from .hub import ensure_hub
from .inventory import mirror_url, write_inventory
from .keys import ensure_ssh_key, write_ssh_config
from .proc import LabError, docker, log, run
from .realvllm import ensure_tiny_repo, ensure_venv
from .realvllm_image import IMAGE_NAME as REAL_IMAGE_NAME
from .realvllm_image import build_image, publish
from .repos import build_repositories
from .services import build, build_and_push, ensure_mirror, ensure_registry, registry_has

STANDIN_CONTEXT = REPO_ROOT / "lab" / "vllm-standin"
# The `hf` CLI stand-in goes into the image (the prefetch runs `--entrypoint hf`). It lives with
# the Hub stand-in, so the build runs on a staged copy of the context with it at hf-standin/hf
# (the Dockerfile's COPY source), which leaves lab/vllm-standin/ untouched.
HF_STANDIN = REPO_ROOT / "lab" / "hf-hub-standin" / "hf"
STAGED_HF = Path("hf-standin") / "hf"
DEFAULT_HOSTS = 5


def _context_hash(context: Path, base_image: str) -> str:
    h = hashlib.sha256(base_image.encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _standin_image(paths: LabPaths, base: str, port: int, previous: dict[str, Any],
                   arm64_base: str = "") -> tuple[str, str]:
    """Digest of the vLLM stand-in image in the lab registry; rebuilt only when its inputs change.
    With `arm64_base` (a lab with an arm64 host) it is a multi-arch index, as upstream's image
    is: the amd64 build and the same context built FROM the arm64 base (oci.py).

    Without lab/vllm-standin/Dockerfile the rest of the lab is still useful (hosts, mirrors), so
    this warns and returns no digest; the inventory then keeps the upstream image."""
    if not (STANDIN_CONTEXT / "Dockerfile").exists():
        log(f"WARNING: {STANDIN_CONTEXT / 'Dockerfile'} is missing: no vLLM stand-in image in the lab "
            "registry and the inventory keeps the upstream image. Restore it and run `lab up` again.")
        return "", ""
    with tempfile.TemporaryDirectory(prefix="vllm-standin-context-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(STANDIN_CONTEXT, context, ignore=shutil.ignore_patterns("__pycache__"))
        (context / STAGED_HF).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(HF_STANDIN, context / STAGED_HF)
        context_hash = _context_hash(context, f"{base} {arm64_base}".strip())
        digest = previous.get("image_digest", "")
        if previous.get("image_context") == context_hash and digest and registry_has(port, STANDIN_IMAGE_NAME, digest):
            return digest, context_hash
        # Tag as upstream does (v0.28.0) so repository:tag and repository@digest both resolve.
        ref = f"127.0.0.1:{port}/{STANDIN_IMAGE_NAME}:v{STANDIN_VLLM_VERSION}"
        digest = build_and_push(context, base, ref, context_hash)
        if arm64_base:
            arm64_ref = f"{PREFIX}/vllm-standin-arm64:{context_hash}"
            build(context, arm64_base, arm64_ref, context_hash)
            digest = oci.multiarch_image(port, STANDIN_IMAGE_NAME, digest, arm64_ref, tag=f"v{STANDIN_VLLM_VERSION}")
            log(f"the stand-in is a multi-arch index {digest} (linux/amd64, linux/arm64)")
        return digest, context_hash


def gpu_host_count(record: dict[str, Any]) -> int:
    """The `--hosts` that made a lab (its record lists the router too, which that does not count)."""
    return sum(1 for h in record.get("hosts", []) if h.get("group") != host_role(ROUTER_HOST_INDEX).group)


def _lab_hosts_present() -> list[str]:
    out = docker("ps", "-a", "--filter", f"label={LABEL_ARG}", "--format", "{{.Names}}")
    return [n for n in out.split()
            if n == host_name(ROUTER_HOST_INDEX) or (n.startswith(f"{PREFIX}-") and n.rsplit("-", 1)[1].isdigit())]


@contextlib.contextmanager
def _exclusive(paths: LabPaths):
    """One `lab up`/`lab down` at a time per lab dir: two would rebuild the same rootfs and
    containers under each other."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.root / "lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another `lab up`/`lab down` holds {paths.root / 'lock'}; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def remove_host(name: str) -> None:
    """Remove one lab host and its Docker volume (the next `up` recreates it fresh)."""
    remove_container(name)
    run(["docker", "volume", "rm", f"{name}-docker"], check=False)


def up(paths: LabPaths, hosts: int = DEFAULT_HOSTS, reset: bool = False, router: bool = True,
       real_vllm_host: int = REAL_VLLM_HOST_INDEX) -> dict[str, Any]:
    """Create what is missing, reuse what exists. reset=True recreates the hosts from scratch.
    real_vllm_host: index of the host that serves real vLLM (0, or beyond `hosts`: none)."""
    if hosts < 1:
        raise LabError("--hosts must be at least 1.")
    if real_vllm_host < 0:
        raise LabError("--real-vllm-host must be a host number (1, 2, ...) or 0 for none.")
    real_vllm_host = real_vllm_host if real_vllm_host <= hosts else 0
    with _exclusive(paths), ThreadPoolExecutor(max_workers=1) as background:
        # A cold install of real vLLM's venv (mostly downloads and unpacking) runs while the base
        # image, services and hosts are built; the image is made from it once both are done.
        venv = background.submit(ensure_venv).result if real_vllm_host else None
        return _up(paths, hosts, reset, real_vllm_host, router, venv=venv)


def _real_vllm_image(paths: LabPaths, base: str, port: int, venv: Path) -> dict[str, Any]:
    """Real vLLM (CPU build) in the lab registry, and the tiny model on the Hub stand-in.
    Cached: the image is rebuilt only when the venv or the recipe changes."""
    started = time.monotonic()
    image = build_image(base, cache_dir=paths.cache, venv=venv)
    digest = publish(image, f"127.0.0.1:{port}")
    ensure_tiny_repo(paths.hub)
    log(f"real vLLM image {registry_address()}/{REAL_IMAGE_NAME}@{digest} "
        f"({image.uncompressed_bytes / 2**30:.1f} GiB) ready in {time.monotonic() - started:.1f} s")
    return {"repository": f"{registry_address()}/{REAL_IMAGE_NAME}", "digest": digest,
            "size_gib": image.uncompressed_bytes / 2**30, "recipe": image.recipe_hash}


def _up(paths: LabPaths, hosts: int, reset: bool, real_vllm_host: int, router: bool = True,
        venv: Callable[[], Path] | None = None) -> dict[str, Any]:
    started = time.monotonic()
    paths.root.mkdir(parents=True, exist_ok=True)
    ensure_tools(["ssh", "ssh-keygen", "gpg", "dpkg-deb"])
    previous = lab_state.load(paths)
    engine = ensure_engine(paths)
    base = ensure_base_image(paths)
    ensure_ssh_key(paths)
    build_repositories(paths, mirror_url())

    subnet = ensure_network()
    mirror_ip, registry_ip = address(subnet, MIRROR_HOST_OCTET), address(subnet, REGISTRY_HOST_OCTET)
    ensure_mirror(paths, base, mirror_ip)
    port = ensure_registry(paths, base, registry_ip)
    hub = ensure_hub(paths, base, address(subnet, HUB_HOST_OCTET))
    arm64_base = ""
    if any(host_role(i).emulated for i in range(1, hosts + 1)):
        ensure_binfmt()  # every time: the registration does not survive a reboot of this machine
        arm64_base = ensure_base_image(paths, DPKG_ARCH)
    digest, context_hash = _standin_image(paths, base, port, previous, arm64_base)
    real = _real_vllm_image(paths, base, port, venv()) if real_vllm_host else {}  # up() passes venv then

    indexes = list(range(1, hosts + 1)) + ([ROUTER_HOST_INDEX] if router else [])
    wanted = {host_name(i) for i in indexes}
    for name in sorted(_lab_hosts_present()):
        if reset or name not in wanted:
            log(f"removing {name}" + ("" if reset else f" (beyond --hosts {hosts})"))
            remove_host(name)
    lab_hosts: list[LabHost] = []
    for i in indexes:
        host_base = arm64_base if host_role(i).emulated else base
        octet = ROUTER_HOST_OCTET if i == ROUTER_HOST_INDEX else FIRST_HOST_OCTET + i - 1
        lab_hosts.append(ensure_host(paths, host_base, i, address(subnet, octet), mirror_url()))
    write_ssh_config(paths, {h.name: h.address for h in lab_hosts})
    systemd = wait_all(paths, lab_hosts)
    real_name = host_name(real_vllm_host) if real_vllm_host else ""
    platforms = ["linux/amd64", "linux/arm64"] if arm64_base else None
    inventory = write_inventory(paths, lab_hosts, digest, platforms=platforms, hub_endpoint=str(hub["url"]),
                                real_vllm={"host": real_name, **real} if real_name else None)

    record = {
        "engine": engine,
        "base_image": base,
        "arm64_base_image": arm64_base or None,
        "network": {"name": NETWORK, "subnet": str(subnet)},
        "mirror": {"name": MIRROR, "address": mirror_ip, "url": mirror_url()},
        "registry": {"name": REGISTRY, "address": registry_ip, "url": registry_address(),
                     "local_port": port},
        "hub": hub,
        "image": f"{registry_address()}/{STANDIN_IMAGE_NAME}@{digest}" if digest else None,
        "image_digest": digest,
        "image_platforms": platforms,
        "image_context": context_hash,
        "real_vllm": ({"host": real_name, "image": f"{real['repository']}@{real['digest']}",
                       "recipe": real["recipe"]} if real_name else None),
        "hosts": [{"name": h.name, "address": h.address, "group": host_role(h.index).group,
                   "profile": host_role(h.index).profile, "arch": host_role(h.index).arch, "gpus": [g["name"] for g in h.identity["gpus"]],
                   "systemd": systemd[h.name]} for h in lab_hosts],
        "inventory": str(inventory),
        "ssh_config": str(paths.ssh_config),
        "ssh_key": str(paths.ssh_key),
        "lab_dir": str(paths.root),
    }
    lab_state.save(paths, record)
    log(f"lab up in {time.monotonic() - started:.1f} s")
    return record


def down(paths: LabPaths) -> None:
    """Remove what carries the lab label, stop the dockerd the lab started; keep caches and keys."""
    with _exclusive(paths):
        _down(paths)


def _remove_lab_images(label: str) -> None:
    """Children before parents: Docker refuses to remove the base image while the vLLM
    stand-in built FROM it exists, even with -f."""
    images = set(docker("images", "-q", "--filter", label).split())
    if not images:
        return
    log(f"removing {len(images)} lab images")
    created = {i: docker("image", "inspect", "--format", "{{.Created}}", i) for i in images}
    for image in sorted(images, key=created.__getitem__, reverse=True):
        run(["docker", "rmi", "-f", image], check=False)
    left = docker("images", "-q", "--filter", label).split()
    if left:
        log(f"WARNING: could not remove lab images {' '.join(left)} (`docker rmi` them by hand)")


def _down(paths: LabPaths) -> None:
    started = time.monotonic()
    if engine_answers():
        label = f"label={LABEL_ARG}"
        containers = docker("ps", "-aq", "--filter", label).split()
        if containers:
            log(f"removing {len(containers)} lab containers")
            docker("rm", "-f", "-v", *containers)
        volumes = docker("volume", "ls", "-q", "--filter", label).split()
        if volumes:
            docker("volume", "rm", "-f", *volumes)
        networks = docker("network", "ls", "-q", "--filter", label).split()
        if networks:
            docker("network", "rm", *networks)
        _remove_lab_images(label)
    stop_engine(paths)
    paths.state.unlink(missing_ok=True)
    if paths.inventory.exists():
        shutil.rmtree(paths.inventory)
    log(f"lab down in {time.monotonic() - started:.1f} s (kept {paths.cache} and the lab's keys)")


def status(paths: LabPaths) -> dict[str, Any]:
    """What is running now (asked from Docker), with the addresses state.json recorded."""
    record = lab_state.load(paths)
    info: dict[str, Any] = {"lab_dir": str(paths.root), "engine": "down", "containers": {}}
    if not engine_answers():
        return info
    info["engine"] = "lab dockerd (pid %d)" % lab_dockerd_pid(paths) if lab_dockerd_pid(paths) else "external"
    subnet = network_subnet()
    info["network"] = f"{NETWORK} {subnet}" if subnet else "absent"
    out = docker("ps", "-a", "--filter", f"label={LABEL_ARG}", "--format", "{{.Names}}")
    for name in sorted(out.split(), key=lambda n: (len(n), n)):
        entry: dict[str, Any] = {"status": container_status(name)}
        addr = run(["docker", "inspect", "--format",
                    f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}', name], check=False)
        entry["address"] = addr.stdout.strip()
        if name not in (MIRROR, REGISTRY, HUB) and entry["status"] == "running":
            entry["systemd"] = run(["docker", "exec", name, "systemctl", "is-system-running"],
                                   check=False).stdout.strip()
        info["containers"][name] = entry
    for key in ("image", "real_vllm", "inventory", "ssh_config", "mirror", "registry", "hub"):
        if key in record:
            info[key] = record[key]
    return info


def format_status(info: dict[str, Any]) -> str:
    lines = [f"lab dir:   {info['lab_dir']}", f"engine:    {info['engine']}"]
    if "network" in info:
        lines.append(f"network:   {info['network']}")
    if not info["containers"]:
        lines.append("lab:       not up (run `vllm-fleet-lab up`)")
    for name, entry in info["containers"].items():
        extra = f"  systemd={entry['systemd']}" if entry.get("systemd") else ""
        lines.append(f"  {name:<26} {entry['status'] or '?':<9} {entry['address'] or '-':<15}{extra}")
    if "mirror" in info:
        lines.append(f"mirror:    {info['mirror']['url']}  (from this machine: http://{info['mirror']['address']})")
    if "registry" in info:
        reg = info["registry"]
        lines.append(f"registry:  {reg['url']}  (push from here: 127.0.0.1:{reg['local_port']})")
    if "hub" in info:
        hub = info["hub"]
        lines.append(f"hf hub:    {hub['url']}  ({hub['name']}, stand-in repos: {', '.join(hub['models'])})")
    if "image" in info:
        lines.append(f"image:     {info['image']}")
    if info.get("real_vllm"):
        real = info["real_vllm"]
        lines.append(f"real vLLM: {real['host']} serves {real['image']} (CPU build; the other hosts: the stand-in)")
    if "inventory" in info:
        lines.append(f"inventory: {info['inventory']}")
        lines.append(f"ssh:       ssh -F {info['ssh_config']} {PREFIX}-1")
    return "\n".join(lines)


def dumps(info: dict[str, Any]) -> str:
    return json.dumps(info, indent=2, sort_keys=True)
