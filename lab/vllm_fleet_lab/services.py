"""The lab's service containers on the lab network: the apt mirror and the image registry.

  vllm-fleet-lab-mirror    python3 -m http.server over <lab>/mirror (read-only), port 80
  vllm-fleet-lab-registry  Debian's docker-registry (2.8), port 5000, storage in a lab volume;
                           also published on 127.0.0.1:<random> so this machine's dockerd can push
                           (Docker treats 127.0.0.0/8 registries as insecure without configuration)
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from .config import (LABEL_ARG, MIRROR, MIRROR_PORT, NETWORK, REGISTRY, REGISTRY_PORT,
                     REGISTRY_VOLUME, LabPaths)
from .docker_objects import create_container, start
from .proc import LabError, docker, docker_ok, log, run

REGISTRY_CONFIG = """\
# docker-registry configuration for the vllm-fleet lab (plain HTTP on the lab network).
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
"""


def wait_http(url: str, what: str, timeout: float = 30, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=3):
                return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.3)
    raise LabError(f"{what} at {url} did not answer within {timeout:.0f} s ({last}); see `docker logs {what}`.")


def ensure_mirror(paths: LabPaths, base_image: str, ip: str) -> None:
    paths.www.mkdir(parents=True, exist_ok=True)
    create_container(
        MIRROR,
        ["--network", NETWORK, "--ip", ip, "--hostname", MIRROR, "--restart", "unless-stopped",
         "-v", f"{paths.www}:/srv/mirror:ro", base_image],
        ["python3", "-m", "http.server", str(MIRROR_PORT), "--directory", "/srv/mirror"],
    )
    start(MIRROR)
    wait_http(f"http://{ip}:{MIRROR_PORT}/", MIRROR)


def registry_binary(paths: LabPaths) -> Path:
    """Debian's docker-registry binary, fetched with `apt-get download` (not installed here, so no
    service starts on this machine) and unpacked into the lab cache."""
    binary = paths.cache / "docker-registry/usr/bin/docker-registry"
    if binary.exists():
        return binary
    work = paths.cache / "debs"
    work.mkdir(parents=True, exist_ok=True)
    log("fetching Debian's docker-registry package")
    hint = "The lab runs Debian's docker-registry; check that apt-get update works on this machine."
    if run(["apt-get", "download", "docker-registry"], cwd=work, check=False).returncode != 0:
        run(["apt-get", "update", "-qq"], hint=hint)
        run(["apt-get", "download", "docker-registry"], cwd=work, hint=hint)
    deb = sorted(work.glob("docker-registry_*.deb"))[-1]
    run(["dpkg-deb", "-x", deb, paths.cache / "docker-registry"])
    return binary


def ensure_registry(paths: LabPaths, base_image: str, ip: str) -> int:
    """Start the registry; returns its port published on 127.0.0.1 (for pushes from here)."""
    binary = registry_binary(paths)
    paths.registry_dir.mkdir(parents=True, exist_ok=True)
    config = paths.registry_dir / "config.yml"
    config.write_text(REGISTRY_CONFIG)
    if not docker_ok("volume", "inspect", REGISTRY_VOLUME):
        docker("volume", "create", "--label", LABEL_ARG, REGISTRY_VOLUME)
    create_container(
        REGISTRY,
        ["--network", NETWORK, "--ip", ip, "--hostname", REGISTRY, "--restart", "unless-stopped",
         "-p", f"127.0.0.1::{REGISTRY_PORT}",
         "-v", f"{REGISTRY_VOLUME}:/var/lib/docker-registry",
         "-v", f"{binary}:/usr/local/bin/docker-registry:ro",
         "-v", f"{config}:/etc/docker/registry/config.yml:ro",
         base_image],
        ["/usr/local/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"],
    )
    start(REGISTRY)
    published = docker("port", REGISTRY, f"{REGISTRY_PORT}/tcp").splitlines()[0]
    port = int(published.rsplit(":", 1)[1])
    wait_http(f"http://127.0.0.1:{port}/v2/", REGISTRY)
    return port


def registry_has(port: int, repository: str, digest: str) -> bool:
    url = f"http://127.0.0.1:{port}/v2/{repository}/manifests/{digest}"
    accept = ("application/vnd.docker.distribution.manifest.v2+json,"
              "application/vnd.docker.distribution.manifest.list.v2+json,"
              "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json")
    req = urllib.request.Request(url, method="HEAD", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def build_and_push(context: Path, base_image: str, ref: str, context_hash: str) -> str:
    """Build the vLLM stand-in image FROM the lab base image, push it, return its digest."""
    build(context, base_image, ref, context_hash)
    return push(ref)


def build(context: Path, base_image: str, ref: str, context_hash: str) -> None:
    """Build the vLLM stand-in image FROM `base_image` as `ref` (this machine's Docker only)."""
    if not (context / "Dockerfile").exists():
        raise LabError(
            f"{context / 'Dockerfile'} is missing, so the vLLM stand-in image cannot be built. It comes "
            "with the vLLM stand-in (lab/vllm-standin/); restore it and run `vllm-fleet-lab up` again."
        )
    log(f"building the vLLM stand-in image {ref} FROM {base_image}")
    # The legacy builder: Debian's dockerd 20.10 with the 28.x client has no buildx plugin here.
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    run(["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={base_image}",
         "--label", LABEL_ARG, "--label", f"vllm-fleet-lab.context={context_hash}",
         "-t", ref, str(context)], env=env,
        hint="Fix the build error above in lab/vllm-standin/ and run `vllm-fleet-lab up` again.")


def push(ref: str) -> str:
    """Push an image to the lab registry; returns the manifest digest the registry gave it."""
    out = run(["docker", "push", ref]).stdout
    for word in out.split():
        if word.startswith("sha256:") and len(word) == 71:
            return word
    raise LabError(f"`docker push {ref}` printed no digest:\n{out}")
