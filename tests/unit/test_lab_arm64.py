"""The lab's aarch64 (Spark) host pieces that need no Docker: the binfmt_misc check, the arm64
base image recipe (amd64's cache key unchanged), the debian12/sbsa CUDA repository, and the
manifest list and image documents oci.py pushes."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from vllm_fleet_lab import arm64, baseimage, oci, repos
from vllm_fleet_lab.config import BASE_IMAGE_REPO
from vllm_fleet_lab.hostpkgs import debian_mirror

# The Debian archive this machine's apt uses (what `lab up` builds from).
MIRROR = debian_mirror()

QEMU_PF = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: PF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""


# --- binfmt_misc ------------------------------------------------------------------------------

def test_binfmt_entry_parsed() -> None:
    entry = arm64.parse_binfmt_entry(QEMU_PF)
    assert entry == {"enabled": True, "interpreter": "/usr/libexec/qemu-binfmt/aarch64-binfmt-P", "flags": "PF"}
    assert arm64.binfmt_problem(QEMU_PF) == ""


@pytest.mark.parametrize("text, says", [
    (None, "no qemu-aarch64 entry"),
    (QEMU_PF.replace("enabled", "disabled", 1), "disabled"),
    (QEMU_PF.replace("flags: PF", "flags: P"), "lacks flag F"),
    (QEMU_PF.replace("flags: PF", "flags: "), "lacks flag F"),
])
def test_binfmt_problems(text: str | None, says: str) -> None:
    assert says in arm64.binfmt_problem(text)


def test_ensure_binfmt_is_quiet_when_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "register").write_text("")
    (tmp_path / "qemu-aarch64").write_text(QEMU_PF)
    monkeypatch.setattr(arm64, "BINFMT_DIR", tmp_path)
    monkeypatch.setattr(arm64, "_binfmt_mounted", lambda binfmt_dir=tmp_path: True)
    monkeypatch.setattr(arm64, "_read_entry", lambda binfmt_dir=tmp_path: QEMU_PF)
    monkeypatch.setattr(arm64, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    arm64.ensure_binfmt()


def test_ensure_binfmt_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arm64, "_read_entry", lambda binfmt_dir=None: None)
    monkeypatch.setattr(arm64.os, "geteuid", lambda: 1000)
    with pytest.raises(arm64.LabError, match="as root"):
        arm64.ensure_binfmt()


# --- base image -------------------------------------------------------------------------------

def test_amd64_recipe_and_tag_unchanged() -> None:
    """The amd64 image keeps the recipe (so the cache key and tag) it had before arch existed."""
    before = {"suite": baseimage.SUITE, "packages": baseimage.PACKAGES, "mirror": MIRROR,
              "security": baseimage.debian_security_mirror(), "version": baseimage.RECIPE_VERSION,
              "unit": baseimage.SSH_HOSTKEYS_UNIT}
    assert baseimage.recipe(MIRROR) == before == baseimage.recipe(MIRROR, "amd64")
    digest = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    assert baseimage.image_tag(MIRROR) == f"{BASE_IMAGE_REPO}:{digest[:12]}"


def test_arm64_tag_differs_and_names_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(baseimage, "debian_security_mirror", lambda: None)
    tag = baseimage.image_tag(MIRROR, "arm64")
    assert tag.startswith(f"{BASE_IMAGE_REPO}:arm64-") and tag != baseimage.image_tag(MIRROR)
    assert baseimage.recipe(MIRROR, "arm64")["dropins"] == baseimage.EMULATION_DROPINS
    with pytest.raises(baseimage.LabError, match="not 'riscv64'"):
        baseimage.image_tag(MIRROR, "riscv64")


def _tree(root: Path) -> None:
    for sub in ("etc/apt/sources.list.d", "etc/ssh", "etc/systemd/system", "var/lib/dbus", "var/lib/apt/lists",
                "var/cache/apt/archives", "root"):
        (root / sub).mkdir(parents=True, exist_ok=True)


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_customise_adds_emulation_dropins_only_for_arm64(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         arch: str) -> None:
    monkeypatch.setattr(baseimage, "debian_security_mirror", lambda: None)
    _tree(tmp_path)
    baseimage._customise(tmp_path, MIRROR, arch)
    system = tmp_path / "etc/systemd/system"
    masked = {p.name for p in system.iterdir() if p.is_symlink() and str(p.readlink()) == "/dev/null"}
    # Nothing more is masked for arm64: the units keep running, with the failing setting cleared.
    assert masked == {"getty@tty1.service", "apt-daily.timer", "apt-daily-upgrade.timer"}
    dropins = {p.parent.name.removesuffix(".d"): p.read_text() for p in system.glob(f"*.d/{baseimage.EMULATION_DROPIN_NAME}")}
    if arch == "amd64":
        assert dropins == {}
        return
    assert dropins == baseimage.EMULATION_DROPINS
    for unit in ("systemd-sysusers.service", "systemd-tmpfiles-setup.service", "systemd-tmpfiles-setup-dev.service"):
        assert "\nLoadCredential=\n" in dropins[unit]
    for unit in ("e2scrub_reap.service", "systemd-hostnamed.service"):
        assert "\nPrivateNetwork=no\n" in dropins[unit]


# --- CUDA repository ---------------------------------------------------------------------------

def test_debian12_sbsa_repository() -> None:
    """The Spark host (Debian 12, aarch64) finds its CUDA repository where the cuda role looks:
    <base>/debian12/sbsa/ (roles/cuda/vars/main.yml maps aarch64 to sbsa)."""
    assert ("debian12", "sbsa", "arm64") in repos.CUDA_REPOS
    assert ("debian12", "x86_64", "amd64") in repos.CUDA_REPOS
    assert len(set(repos.CUDA_REPOS)) == len(repos.CUDA_REPOS)
    assert repos.cuda_repo_dir(Path("/www"), "debian12", "sbsa") == Path("/www/compute/cuda/repos/debian12/sbsa")
    assert "arm64" in repos.KERNEL_ARCHES and "arm64" in repos.TOOLKIT_ARCHES


# --- OCI / Docker manifest documents -----------------------------------------------------------

def _desc(n: int, arch: str | None = None) -> dict[str, Any]:
    return oci.descriptor(oci.MANIFEST, "sha256:" + f"{n:x}" * 64, 1000 + n, oci.PLATFORMS[arch] if arch else None)


def test_manifest_list_names_both_platforms() -> None:
    doc = oci.manifest_list([_desc(1, "amd64"), _desc(2, "arm64")])
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == oci.MANIFEST_LIST
    assert [m["platform"] for m in doc["manifests"]] == [
        {"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux", "variant": "v8"}]
    assert all(m["mediaType"] == oci.MANIFEST and m["size"] > 0 for m in doc["manifests"])
    body = oci.canonical(doc)
    assert json.loads(body) == doc and oci.sha256_digest(body) == "sha256:" + hashlib.sha256(body).hexdigest()


def test_manifest_list_refuses_missing_or_duplicate_platform() -> None:
    with pytest.raises(ValueError, match="no platform"):
        oci.manifest_list([_desc(1)])
    with pytest.raises(ValueError, match="same platform"):
        oci.manifest_list([_desc(1, "arm64"), _desc(2, "arm64")])


def test_config_for_arch_keeps_the_rest() -> None:
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
              "config": {"Entrypoint": ["vllm", "serve"], "Env": ["PYTHONUNBUFFERED=1"]}}
    arm = oci.config_for_arch(config, "arm64")
    assert (arm["architecture"], arm["os"], arm["variant"]) == ("arm64", "linux", "v8")
    assert arm["config"] == config["config"] and arm["rootfs"] == config["rootfs"]
    assert config["architecture"] == "amd64"  # not modified in place
    assert "variant" not in oci.config_for_arch(arm, "amd64")


class FakeRegistry:
    """Records what push_saved_image sends, as a registry would store it."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}

    def push_blob(self, repo: str, digest: str, size: int, data: bytes | Path) -> None:
        body = data.read_bytes() if isinstance(data, Path) else data
        assert oci.sha256_digest(body) == digest and len(body) == size
        self.blobs[digest] = body

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        digest = oci.sha256_digest(body)
        assert reference in (digest, "v1")
        self.manifests[digest] = (body, media_type)
        return digest


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _docker_save(path: Path, layers: list[bytes]) -> None:
    """A tarball laid out as `docker save` (Docker 20.10) writes one: manifest.json, config, layers."""
    config = {"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["vllm", "serve"]},
              "rootfs": {"type": "layers", "diff_ids": [oci.sha256_digest(layer) for layer in layers]}}
    config_body = json.dumps(config).encode()
    files = {"abc.json": config_body}
    names = []
    for i, layer in enumerate(layers):
        files[f"l{i}/layer.tar"] = layer
        names.append(f"l{i}/layer.tar")
    files["manifest.json"] = json.dumps([{"Config": "abc.json", "RepoTags": ["x:y"], "Layers": names}]).encode()
    path.write_bytes(_layer(files))


def test_push_saved_image_writes_an_arm64_image(tmp_path: Path) -> None:
    layers = [_layer({"etc/os-release": b"ID=debian\n"}), _layer({"usr/local/bin/vllm": b"#!/bin/sh\n"})]
    _docker_save(tmp_path / "saved.tar", layers)
    (tmp_path / "work").mkdir()
    reg = FakeRegistry()
    desc = oci.push_saved_image(reg, "probe/standin", tmp_path / "saved.tar", "arm64", tmp_path / "work")  # type: ignore[arg-type]
    assert desc["platform"] == oci.PLATFORMS["arm64"] and desc["mediaType"] == oci.MANIFEST
    body, media_type = reg.manifests[desc["digest"]]
    assert media_type == oci.MANIFEST and len(body) == desc["size"]
    manifest = json.loads(body)
    config = json.loads(reg.blobs[manifest["config"]["digest"]])
    assert (config["architecture"], config["variant"]) == ("arm64", "v8")
    assert config["config"]["Entrypoint"] == ["vllm", "serve"]
    # Layers are pushed gzipped; each unzips to the tar its diff_id names.
    import gzip

    assert [oci.sha256_digest(gzip.decompress(reg.blobs[l["digest"]])) for l in manifest["layers"]] == \
        config["rootfs"]["diff_ids"]
    assert all(l["mediaType"] == oci.LAYER for l in manifest["layers"])
    # Reproducible: the same save pushes the same manifest.
    (tmp_path / "work2").mkdir()
    again = oci.push_saved_image(FakeRegistry(), "probe/standin", tmp_path / "saved.tar", "arm64", tmp_path / "work2")  # type: ignore[arg-type]
    assert again == desc


def test_push_saved_image_refuses_a_layer_that_does_not_match(tmp_path: Path) -> None:
    _docker_save(tmp_path / "saved.tar", [_layer({"a": b"1"})])
    with tarfile.open(tmp_path / "saved.tar") as tar:
        tar.extractall(tmp_path / "work")
    (tmp_path / "work/l0/layer.tar").write_bytes(_layer({"a": b"2"}))
    reg = FakeRegistry()
    with tarfile.open(tmp_path / "saved.tar", "w") as tar:
        for name in ("manifest.json", "abc.json", "l0/layer.tar"):
            tar.add(tmp_path / "work" / name, arcname=name)
    (tmp_path / "w2").mkdir()
    with pytest.raises(oci.LabError, match="does not match its diff_id"):
        oci.push_saved_image(reg, "r", tmp_path / "saved.tar", "arm64", tmp_path / "w2")  # type: ignore[arg-type]


# --- amd64 Docker helpers for the arm64 host ---------------------------------------------------

LDD = """\tlinux-vdso.so.1 (0x00007ffd)
\tlibseccomp.so.2 => /lib/x86_64-linux-gnu/libseccomp.so.2 (0x00007f1)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f3)
"""


def test_shared_libraries_from_ldd() -> None:
    assert arm64.shared_libraries(LDD) == ["/lib/x86_64-linux-gnu/libseccomp.so.2",
                                           "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]
    assert arm64.shared_libraries("\tstatically linked\n") == []


def _wrapper(tmp_path: Path) -> Path:
    """RUNC_WRAPPER with the amd64 runc replaced by a script that records its arguments."""
    fake = tmp_path / "fake-runc"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path}/argv\n")
    fake.chmod(0o755)
    wrapper = tmp_path / "runc"
    wrapper.write_text(arm64.RUNC_WRAPPER.replace(arm64.KIT_RUNC, str(fake)))
    wrapper.chmod(0o755)
    return wrapper


CONFIG = ('{"ociVersion":"1.0.2","hooks":{"prestart":[{"path":"/proc/4265/exe","args":["libnetwork-setkey",'
          '"-exec-root=/var/run/docker","0f7c","a1b2"]}]},"process":{"args":["/proc/self/exe"]}}')


@pytest.mark.parametrize("bundle_args", [["--bundle", "{b}"], ["--bundle={b}"], ["-b", "{b}"]])
def test_runc_wrapper_points_the_libnetwork_hook_at_dockerd(tmp_path: Path, bundle_args: list[str]) -> None:
    import subprocess

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(CONFIG)
    argv = ["--root", "/run/docker/runtime-runc/moby", "create", *[a.format(b=bundle) for a in bundle_args],
            "--pid-file", "/x/init.pid", "0f7c"]
    subprocess.run([str(_wrapper(tmp_path)), *argv], check=True)
    config = json.loads((bundle / "config.json").read_text())
    assert config["hooks"]["prestart"][0]["path"] == "/usr/sbin/dockerd"
    assert config["hooks"]["prestart"][0]["args"][0] == "libnetwork-setkey"
    assert config["process"]["args"] == ["/proc/self/exe"]  # only hook paths change
    assert (tmp_path / "argv").read_text().splitlines() == argv  # runc gets the arguments unchanged


def test_runc_wrapper_passes_other_commands_through(tmp_path: Path) -> None:
    import subprocess

    subprocess.run([str(_wrapper(tmp_path)), "--root", "/r", "exec", "--process", "/p.json", "0f7c"], check=True)
    assert (tmp_path / "argv").read_text().splitlines() == ["--root", "/r", "exec", "--process", "/p.json", "0f7c"]


@pytest.mark.skipif(not Path("/usr/sbin/runc").exists() or not Path("/usr/sbin/xtables-nft-multi").exists(),
                    reason="needs this machine's docker.io dependencies (runc, containerd, iptables)")
def test_runtime_kit_tar() -> None:
    data = arm64.runtime_kit_tar()
    assert data == arm64.runtime_kit_tar()  # deterministic: usable in a host's seed hash
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["usr/local/sbin/runc"].isfile()
        assert tar.extractfile("usr/local/sbin/runc").read().decode() == arm64.RUNC_WRAPPER  # type: ignore[union-attr]
        for dest in arm64.KIT_PROGRAMS.values():
            assert members[dest].isfile() and members[dest].mode == 0o755
        for name in arm64.IPTABLES_NAMES:
            assert members[f"usr/local/sbin/{name}"].issym() and members[f"usr/local/sbin/{name}"].linkname == "xtables-nft-multi"
        assert members["lib64"].linkname == "usr/lib64"
        assert members["usr/lib64/ld-linux-x86-64.so.2"].linkname == "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        for lib in ("libc.so.6", "libseccomp.so.2", "libnftnl.so.11", "ld-linux-x86-64.so.2"):
            assert members[f"usr/lib/x86_64-linux-gnu/{lib}"].isfile()
        assert any(n.startswith("usr/lib/x86_64-linux-gnu/xtables/libxt_") for n in members)
        # Nothing lands on top of Debian's arm64 files (those live in /usr/bin, /usr/sbin, /usr/lib/aarch64-linux-gnu).
        assert not [n for n in members if n.startswith(("usr/bin/", "usr/sbin/", "usr/lib/aarch64"))]


def test_runtime_kit_needs_this_machines_programs(tmp_path: Path) -> None:
    with pytest.raises(arm64.LabError, match="apt-get install docker.io"):
        arm64.runtime_kit_tar(tmp_path)


# --- host 6, the aarch64 Spark, in the inventory `lab up --hosts 6` writes --------------------


def test_host_6_is_an_arm64_spark_that_waives_only_memory_and_lint_passes_it(tmp_path: Path, monkeypatch, capsys) -> None:
    from vllm_fleet_lab import inventory as lab_inventory
    from vllm_fleet_lab.config import ARM64_HOST_INDEX, LabPaths, host_name, host_role
    from vllm_fleet_lab.hosts import LabHost
    from vllm_fleet_lab.identities import identity_for

    from vllm_fleet.cli import main

    monkeypatch.setattr(lab_inventory, "fingerprint", lambda paths, name: "0123456789ABCDEF" * 2 + "01234567")
    hosts = [LabHost(i, host_name(i), f"172.30.200.{10 + i}", identity_for(host_role(i), host_name(i)))
             for i in range(1, ARM64_HOST_INDEX + 1)]
    inv = lab_inventory.write_inventory(LabPaths(tmp_path / "lab"), hosts, "sha256:" + "ab" * 32,
                                        platforms=["linux/amd64", "linux/arm64"])
    assert host_role(ARM64_HOST_INDEX).arch == "arm64" and host_role(ARM64_HOST_INDEX).group == "spark"
    host_vars = yaml.safe_load((inv / "host_vars" / f"{host_name(ARM64_HOST_INDEX)}.yml").read_text())
    assert sorted(host_vars["vllm_fleet_waivers"]) == ["VF113"]
    assert host_vars["cuda_manage_toolkit"] is True
    offline = yaml.safe_load((inv / "group_vars/all/offline.yml").read_text())
    assert offline["vllm_fleet_overrides"]["image"]["platforms"] == ["linux/amd64", "linux/arm64"]
    assert main(["lint", str(inv), "--format", "json"]) == 0, capsys.readouterr().out
    # The same inventory with an amd64-only stand-in: VF103 stops the aarch64 host.
    inv = lab_inventory.write_inventory(LabPaths(tmp_path / "lab"), hosts, "sha256:" + "ab" * 32,
                                        platforms=["linux/amd64"])
    capsys.readouterr()
    assert main(["lint", str(inv), "--format", "json"]) != 0
    found = json.loads(capsys.readouterr().out)["violations"]
    assert {(v["host"], v["rule"]) for v in found if v["severity"] == "error"} >= {(host_name(ARM64_HOST_INDEX), "VF103")}
