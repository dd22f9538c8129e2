"""A multi-architecture image in the lab registry, pushed over the registry's HTTP API (v2).

Docker 20.10 here has no buildx, and `docker import`/`docker build` record every image as amd64
(the daemon's platform), whatever the rootfs holds. So the lab builds the arm64 vLLM stand-in
as it builds the amd64 one (the same Dockerfile, FROM the arm64 base image; its RUN steps run
under qemu-user), `docker save`s it, and pushes it here with its config's architecture set to
arm64. Then it pushes a manifest list naming both children with their platforms: a host's
dockerd pulls the child of its own architecture from the one `repository@digest`.

Media types are Docker's schema 2 (what `docker push` writes for the amd64 child), so the list
and its children stay of one family; registry 2.8 and Docker 20.10 both take them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .proc import LabError, log, run

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = f"{MANIFEST_LIST}, {MANIFEST}, {OCI_INDEX}, {OCI_MANIFEST}"

# Docker's and OCI's names for a platform, by Debian architecture.
PLATFORMS: dict[str, dict[str, str]] = {
    "amd64": {"architecture": "amd64", "os": "linux"},
    "arm64": {"architecture": "arm64", "os": "linux", "variant": "v8"},
}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def descriptor(media_type: str, digest: str, size: int, platform: dict[str, str] | None = None) -> dict[str, Any]:
    desc: dict[str, Any] = {"mediaType": media_type, "size": size, "digest": digest}
    if platform is not None:
        desc["platform"] = dict(platform)
    return desc


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes the lab pushes for a JSON document (its digest is the digest of these bytes)."""
    return json.dumps(doc, indent=3).encode()


def image_manifest(config: dict[str, Any], layers: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": list(layers)}


def manifest_list(children: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A manifest list of child descriptors, each with its platform."""
    items = list(children)
    for child in items:
        if "platform" not in child:
            raise ValueError(f"child {child.get('digest')} has no platform")
    platforms = [json.dumps(c["platform"], sort_keys=True) for c in items]
    if len(set(platforms)) != len(platforms):
        raise ValueError("two children of one manifest list have the same platform")
    return {"schemaVersion": 2, "mediaType": MANIFEST_LIST, "manifests": items}


def config_for_arch(config: dict[str, Any], arch: str) -> dict[str, Any]:
    """An image config (as `docker save` writes it) that says what architecture it holds."""
    fixed = json.loads(json.dumps(config))
    platform = PLATFORMS[arch]
    fixed["architecture"] = platform["architecture"]
    fixed["os"] = platform["os"]
    if "variant" in platform:
        fixed["variant"] = platform["variant"]
    else:
        fixed.pop("variant", None)
    return fixed


@dataclass(frozen=True)
class Registry:
    """A registry reached over plain HTTP (the lab's, on 127.0.0.1:<port>)."""

    url: str  # e.g. http://127.0.0.1:32768

    def _request(self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None,
                 ok: tuple[int, ...] = (200,)) -> tuple[int, dict[str, str], bytes]:
        target = path if path.startswith("http") else self.url + path
        req = urllib.request.Request(target, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                status, hdrs, body = resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            status, hdrs, body = exc.code, dict(exc.headers), exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise LabError(f"the registry at {self.url} did not answer {method} {path} ({exc}); "
                           "check that the lab registry runs (`docker ps`).") from exc
        if status not in ok:
            raise LabError(f"the registry at {self.url} answered {method} {path} with {status}: "
                           f"{body[:500].decode(errors='replace')}")
        return status, hdrs, body

    def has_blob(self, repo: str, digest: str) -> bool:
        status, _, _ = self._request("HEAD", f"/v2/{repo}/blobs/{digest}", ok=(200, 404))
        return status == 200

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Link a blob another repository of this registry has; False when the registry would not."""
        query = urllib.parse.urlencode({"mount": digest, "from": from_repo})
        status, hdrs, _ = self._request("POST", f"/v2/{repo}/blobs/uploads/?{query}", data=b"",
                                        ok=(201, 202))
        if status == 202:  # the registry opened an upload instead; cancel it
            self._request("DELETE", self._location(hdrs), ok=(204, 404))
        return status == 201

    def _location(self, headers: dict[str, str]) -> str:
        location = headers.get("Location", "")
        if not location:
            raise LabError(f"the registry at {self.url} opened an upload without a Location header.")
        return location if location.startswith("http") else self.url + location

    def push_blob(self, repo: str, digest: str, size: int, data: bytes | Path) -> None:
        """Upload one blob (monolithic POST-then-PUT), unless the repository has it."""
        if self.has_blob(repo, digest):
            return
        _, hdrs, _ = self._request("POST", f"/v2/{repo}/blobs/uploads/", data=b"", ok=(202,))
        location = self._location(hdrs)
        target = location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if isinstance(data, Path):
            with open(data, "rb") as fh:
                self._request("PUT", target, data=fh, headers=headers, ok=(201,))
        else:
            self._request("PUT", target, data=data, headers=headers, ok=(201,))

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest (or list) under a tag or digest; returns its digest."""
        _, hdrs, _ = self._request("PUT", f"/v2/{repo}/manifests/{reference}", data=body,
                                   headers={"Content-Type": media_type}, ok=(201,))
        digest = sha256_digest(body)
        given = hdrs.get("Docker-Content-Digest", digest)
        if given != digest:
            raise LabError(f"the registry stored {repo}:{reference} as {given}, not {digest}.")
        return digest

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str]:
        """A manifest's bytes and media type."""
        _, hdrs, body = self._request("GET", f"/v2/{repo}/manifests/{reference}", headers={"Accept": ACCEPT})
        return body, hdrs.get("Content-Type", "")


def copy_manifest(reg: Registry, src_repo: str, reference: str, dst_repo: str) -> dict[str, Any]:
    """Make an image of one repository available in another of the same registry (blobs mounted,
    not copied); returns its descriptor (no platform)."""
    body, media_type = reg.get_manifest(src_repo, reference)
    doc = json.loads(body)
    for blob in [doc["config"], *doc["layers"]]:
        if not reg.has_blob(dst_repo, blob["digest"]) and not reg.mount_blob(dst_repo, blob["digest"], src_repo):
            raise LabError(f"the registry would not mount {blob['digest']} from {src_repo} into {dst_repo}.")
    digest = reg.put_manifest(dst_repo, sha256_digest(body), body, media_type)
    return descriptor(media_type, digest, len(body))


def _gzip_layer(layer_tar: Path, out: Path) -> None:
    """A reproducible gzip (no name or time in the header): the same layer gets the same digest."""
    with (open(layer_tar, "rb") as src, open(out, "wb") as raw,
          gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as dst):
        shutil.copyfileobj(src, dst, 1 << 20)


def push_saved_image(reg: Registry, repo: str, saved: Path, arch: str, work: Path) -> dict[str, Any]:
    """Push the one image of a `docker save` tarball as an image of `arch`; returns its manifest's
    descriptor with the platform, for a manifest list. The manifest is pushed by digest only."""
    with tarfile.open(saved) as tar:
        tar.extractall(work, filter="tar") if hasattr(tarfile, "data_filter") else tar.extractall(work)
    entries = json.loads((work / "manifest.json").read_text())
    if len(entries) != 1:
        raise LabError(f"{saved} holds {len(entries)} images; save exactly one.")
    config = config_for_arch(json.loads((work / entries[0]["Config"]).read_text()), arch)
    diff_ids = config["rootfs"]["diff_ids"]
    if len(diff_ids) != len(entries[0]["Layers"]):
        raise LabError(f"{saved}: {len(entries[0]['Layers'])} layers but {len(diff_ids)} diff_ids in its config.")
    layers = []
    for layer, diff_id in zip(entries[0]["Layers"], diff_ids):
        tar_path = work / layer
        if file_digest(tar_path)[0] != diff_id:
            raise LabError(f"{saved}: layer {layer} does not match its diff_id {diff_id}.")
        gz = tar_path.with_suffix(".tar.gz")
        _gzip_layer(tar_path, gz)
        digest, size = file_digest(gz)
        reg.push_blob(repo, digest, size, gz)
        layers.append(descriptor(LAYER, digest, size))
    config_body = json.dumps(config, separators=(",", ":")).encode()
    config_digest = sha256_digest(config_body)
    reg.push_blob(repo, config_digest, len(config_body), config_body)
    body = canonical(image_manifest(descriptor(CONFIG, config_digest, len(config_body)), layers))
    digest = reg.put_manifest(repo, sha256_digest(body), body, MANIFEST)
    return descriptor(MANIFEST, digest, len(body), PLATFORMS[arch])


def push_local_image(reg: Registry, repo: str, image: str, arch: str) -> dict[str, Any]:
    """`docker save` a local image and push it as an image of `arch` (see push_saved_image)."""
    with tempfile.TemporaryDirectory(prefix="vllm-fleet-lab-oci-") as tmp:
        saved = Path(tmp) / "image.tar"
        run(["docker", "save", "-o", saved, image], hint=f"`docker save {image}` must work here.")
        work = Path(tmp) / "x"
        work.mkdir()
        return push_saved_image(reg, repo, saved, arch, work)


def push_manifest_list(reg: Registry, repo: str, children: Iterable[dict[str, Any]], tag: str | None = None) -> str:
    """Push a manifest list of children already in `repo` (under `tag` if given, else by digest);
    returns its digest, the one `repo@digest` every host pulls."""
    body = canonical(manifest_list(children))
    digest = reg.put_manifest(repo, tag or sha256_digest(body), body, MANIFEST_LIST)
    log(f"pushed the manifest list {repo}@{digest}")
    return digest


def multiarch_image(port: int, repo: str, amd64_digest: str, arm64_image: str, tag: str | None = None,
                    amd64_repo: str | None = None) -> str:
    """The lab's multi-arch stand-in: `repo@amd64_digest` (pushed by `docker push`; from
    `amd64_repo` of the same registry if it is elsewhere) and the local arm64 build `arm64_image`
    become one manifest list; returns its digest."""
    reg = Registry(f"http://127.0.0.1:{port}")
    if amd64_repo and amd64_repo != repo:
        amd64 = copy_manifest(reg, amd64_repo, amd64_digest, repo)
    else:
        body, media_type = reg.get_manifest(repo, amd64_digest)
        amd64 = descriptor(media_type, sha256_digest(body), len(body))
    amd64["platform"] = dict(PLATFORMS["amd64"])
    arm64 = push_local_image(reg, repo, arm64_image, "arm64")
    return push_manifest_list(reg, repo, [amd64, arm64], tag)
