"""The Hugging Face Hub STAND-IN (lab/hf-hub-standin/server.py) and the `hf` CLI STAND-IN
(lab/hf-hub-standin/hf), both test doubles for the vllm role's weight prefetch.

Unit tests (no Docker): the server against the REAL huggingface_hub client (skipped when no
interpreter here can import it), and the stand-in `hf` writing the same cache layout; errors,
interrupted downloads and a full disk leave no complete-looking file.
Lab test (marker `lab`): the role's own prefetch command, rendered from roles/vllm/defaults,
run on a lab host against the lab's hub container.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.lab.lab_hosts import FALLBACK

ROOT = Path(__file__).resolve().parents[2]
STANDIN_DIR = ROOT / "lab" / "hf-hub-standin"
HF = STANDIN_DIR / "hf"
REPO = "acme/tiny"
TOKEN = "hf_standin_test_token"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


server_mod = _load("hf_hub_standin_server", STANDIN_DIR / "server.py")


def _real_hf_python() -> str | None:
    """An interpreter that imports the real huggingface_hub (this one, or the real-vLLM venv)."""
    candidates = [os.environ.get("VLLM_FLEET_HF_PYTHON"), sys.executable,
                  str(ROOT / ".lab" / "real-vllm" / "venv" / "bin" / "python")]
    for python in filter(None, candidates):
        if Path(python).exists() and subprocess.run([python, "-c", "import huggingface_hub"],
                                                    capture_output=True).returncode == 0:
            return python
    return None


REAL_HF_PYTHON = _real_hf_python()
needs_real_client = pytest.mark.skipif(
    REAL_HF_PYTHON is None,
    reason="no interpreter here imports huggingface_hub (tried this one and .lab/real-vllm/venv; "
           "set VLLM_FLEET_HF_PYTHON to one that does)")


@pytest.fixture()
def hub_root(tmp_path: Path) -> Path:
    """acme/tiny: a regular file, an LFS-tracked file (.safetensors) and a nested file."""
    repo = tmp_path / "hub" / REPO
    (repo / "sub").mkdir(parents=True)
    (repo / "config.json").write_text('{"model_type": "qwen3_moe", "standin": true}\n')
    (repo / "model.safetensors").write_bytes(hashlib.sha256(b"x").digest() * 160)  # 5120 bytes
    (repo / "sub" / "notes.txt").write_text("stand-in\n")
    (repo / ".hidden").write_text("not served\n")
    gated = tmp_path / "hub" / "acme" / "gated"
    gated.mkdir(parents=True)
    (gated / "config.json").write_text("{}\n")
    return tmp_path / "hub"


@contextlib.contextmanager
def serve(root: Path, **options) -> Iterator[str]:
    server = server_mod.make_server(root, quiet=True, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def hf(endpoint: str, cache: Path, *args: str, token: str | None = None,
       token_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(cache.parent / "hf-home-unused"))
    if token:
        env["HF_TOKEN"] = token
    if token_path:
        env["HF_TOKEN_PATH"] = str(token_path)
    return subprocess.run([sys.executable, str(HF), "download", *args, "--cache-dir", str(cache)],
                          env=env, capture_output=True, text=True, timeout=60)


def real_client(script: str, **values: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               HF_HOME=values.get("home", "/nonexistent-hf-home"))
    code = textwrap.dedent(script).format(**{k: repr(v) for k, v in values.items()})
    return subprocess.run([REAL_HF_PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def layout(storage: Path) -> dict[str, str]:
    """Every entry under models--org--name: symlinks by target, files by content hash."""
    out: dict[str, str] = {}
    for path in sorted(storage.rglob("*")):
        rel = path.relative_to(storage).as_posix()
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def commit_of(endpoint: str, repo: str = REPO) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{endpoint}/api/models/{repo}/revision/main") as resp:
        return json.loads(resp.read())["sha"]


# --- the server, with the real client -------------------------------------------------------------


@needs_real_client
def test_real_client_and_standin_hf_make_the_same_cache(hub_root: Path, tmp_path: Path):
    with serve(hub_root) as endpoint:
        real = real_client("""
            from huggingface_hub import snapshot_download
            print(snapshot_download({repo}, revision="main", endpoint={endpoint}, cache_dir={cache}))
            """, repo=REPO, endpoint=endpoint, cache=str(tmp_path / "real"))
        assert real.returncode == 0, real.stderr
        ours = hf(endpoint, tmp_path / "ours", REPO, "--revision", "main")
        assert ours.returncode == 0, ours.stderr
        commit = commit_of(endpoint)

    storage = "models--acme--tiny"
    expected = tmp_path / "real" / storage
    assert real.stdout.strip().splitlines()[-1] == str(expected / "snapshots" / commit)
    assert ours.stdout.strip() == str(tmp_path / "ours" / storage / "snapshots" / commit)
    real_layout = layout(expected)
    assert layout(tmp_path / "ours" / storage) == real_layout
    # The shape itself, as vLLM reads it offline: refs/main -> commit, snapshot links -> blobs.
    assert (expected / "refs" / "main").read_text() == commit
    assert real_layout[f"snapshots/{commit}/sub/notes.txt"].startswith("-> ../../../blobs/")
    sha256 = hashlib.sha256((hub_root / REPO / "model.safetensors").read_bytes()).hexdigest()
    assert real_layout[f"snapshots/{commit}/model.safetensors"] == f"-> ../../blobs/{sha256}"
    assert not any(".hidden" in rel for rel in real_layout)
    assert (tmp_path / "ours" / "CACHEDIR.TAG").read_text() == (tmp_path / "real" / "CACHEDIR.TAG").read_text()


@needs_real_client
def test_real_client_sees_hub_errors_as_the_hubs(hub_root: Path, tmp_path: Path):
    """404 RepoNotFound / RevisionNotFound / EntryNotFound and the gated repo's 401 map onto the
    real client's exceptions, and the right token opens the gated repo."""
    with serve(hub_root, token=TOKEN, gated=["acme/gated"]) as endpoint:
        result = real_client("""
            from huggingface_hub import hf_hub_download, snapshot_download
            from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError,
                                                RepositoryNotFoundError, RevisionNotFoundError)
            kw = dict(endpoint={endpoint}, cache_dir={cache})
            for call, exc in [
                (lambda: snapshot_download("acme/nope", **kw), RepositoryNotFoundError),
                (lambda: snapshot_download("acme/tiny", revision="v9", **kw), RevisionNotFoundError),
                (lambda: hf_hub_download("acme/tiny", "missing.json", **kw), EntryNotFoundError),
                (lambda: snapshot_download("acme/gated", token=False, **kw), GatedRepoError),
            ]:
                try:
                    call()
                except exc:
                    print("raised", exc.__name__)
            print(snapshot_download("acme/gated", token={token}, **kw))
            """, endpoint=endpoint, cache=str(tmp_path / "real"), token=TOKEN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("raised") == 4, result.stdout + result.stderr
    assert "models--acme--gated/snapshots/" in result.stdout


# --- the stand-in hf ------------------------------------------------------------------------------


def test_hf_refuses_a_missing_repo_with_a_clear_error(hub_root: Path, tmp_path: Path):
    with serve(hub_root) as endpoint:
        result = hf(endpoint, tmp_path / "cache", "acme/nope", "--revision", "main")
    assert result.returncode == 1
    assert "repository not found" in result.stderr and "acme/nope" in result.stderr
    assert "Check the model id" in result.stderr
    assert not (tmp_path / "cache" / "models--acme--nope" / "snapshots").exists()


def test_hf_refuses_an_unknown_revision_and_an_unreachable_endpoint(hub_root: Path, tmp_path: Path):
    with serve(hub_root) as endpoint:
        bad_rev = hf(endpoint, tmp_path / "cache", REPO, "--revision", "v9")
    gone = hf(endpoint, tmp_path / "cache", REPO)  # the server is shut down now
    assert bad_rev.returncode == 1 and "revision not found" in bad_rev.stderr
    assert gone.returncode == 1 and "cannot reach the Hugging Face endpoint" in gone.stderr
    assert "HF_ENDPOINT" in gone.stderr


def test_hf_needs_the_token_for_a_gated_repo(hub_root: Path, tmp_path: Path):
    with serve(hub_root, token=TOKEN, gated=["acme/gated"]) as endpoint:
        anonymous = hf(endpoint, tmp_path / "cache", "acme/gated")
        wrong = hf(endpoint, tmp_path / "cache", "acme/gated", token="hf_wrong")
        with_token = hf(endpoint, tmp_path / "cache", "acme/gated", token=TOKEN)
    assert anonymous.returncode == 1 and "set HF_TOKEN" in anonymous.stderr
    assert wrong.returncode == 1 and "token was refused" in wrong.stderr
    assert TOKEN not in anonymous.stderr + wrong.stderr + with_token.stderr
    assert with_token.returncode == 0, with_token.stderr
    assert Path(with_token.stdout.strip(), "config.json").read_text() == "{}\n"


def test_hf_reads_the_token_from_the_file_HF_TOKEN_PATH_names(hub_root: Path, tmp_path: Path):
    """As huggingface_hub does, and as the vllm role's prefetch gives it the token: a root-only
    file, so that it is in no environment or command line. No file there: anonymous."""
    token_file = tmp_path / "secrets" / "hf-token"
    token_file.parent.mkdir()
    token_file.write_text(TOKEN)
    with serve(hub_root, token=TOKEN, gated=["acme/gated"]) as endpoint:
        from_file = hf(endpoint, tmp_path / "cache", "acme/gated", token_path=token_file)
        no_file = hf(endpoint, tmp_path / "cache2", "acme/gated", token_path=tmp_path / "secrets" / "absent")
    assert from_file.returncode == 0, from_file.stderr
    assert no_file.returncode == 1 and "HF_TOKEN_PATH" in no_file.stderr
    assert TOKEN not in from_file.stdout + from_file.stderr + no_file.stderr


@needs_real_client
def test_real_client_reads_HF_TOKEN_PATH_against_the_gated_hub(hub_root: Path, tmp_path: Path):
    """The real huggingface_hub, as the vllm role's prefetch runs it (HF_TOKEN_PATH, no HF_TOKEN)."""
    token_file = tmp_path / "hf-token"
    token_file.write_text(TOKEN)
    with serve(hub_root, token=TOKEN) as endpoint:
        script = """
            import os
            os.environ["HF_TOKEN_PATH"] = {path}
            from huggingface_hub import snapshot_download
            print(snapshot_download("acme/gated", endpoint={endpoint}, cache_dir={cache}))
            """
        result = real_client(script, path=str(token_file), endpoint=endpoint, cache=str(tmp_path / "real"))
    assert result.returncode == 0, result.stderr
    assert "models--acme--gated/snapshots/" in result.stdout


def test_the_server_takes_its_token_from_a_file(hub_root: Path, tmp_path: Path):
    """--token-file: the token gates the repos and is on no command line (`ps`, `docker inspect`)."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    proc = subprocess.Popen([sys.executable, str(STANDIN_DIR / "server.py"), "--root", str(hub_root), "--bind", "127.0.0.1",
                             "--port", "0", "--token-file", str(token_file), "--quiet"],
                            stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stderr.readline()
        assert "token required for every repo" in banner, banner
        endpoint = banner.split(" on ")[1].split()[0]
        assert TOKEN not in Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        anonymous = hf(endpoint, tmp_path / "cache", REPO)
        with_token = hf(endpoint, tmp_path / "cache", REPO, token=TOKEN)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert anonymous.returncode == 1 and "access denied" in anonymous.stderr
    assert with_token.returncode == 0, with_token.stderr


def test_an_interrupted_download_leaves_no_snapshot_file_and_a_rerun_completes(hub_root: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    with serve(hub_root, interrupt_after=1000) as endpoint:
        cut = hf(endpoint, cache, REPO)
        commit = commit_of(endpoint)
    assert cut.returncode == 1
    assert "interrupted after 1000 of 5120 bytes" in cut.stderr and "run the download again" in cut.stderr
    storage = cache / "models--acme--tiny"
    snapshot = storage / "snapshots" / commit
    assert not (snapshot / "model.safetensors").exists()
    assert not (snapshot / "model.safetensors").is_symlink()
    assert [p.name for p in (storage / "blobs").iterdir() if p.stat().st_size == 5120] == []
    assert not list((storage / "blobs").glob("*.incomplete"))

    with serve(hub_root) as endpoint:
        again = hf(endpoint, cache, REPO)
    assert again.returncode == 0, again.stderr
    assert (snapshot / "model.safetensors").read_bytes() == (hub_root / REPO / "model.safetensors").read_bytes()


def test_a_full_disk_fails_with_a_clear_error_and_no_snapshot_file(hub_root: Path, tmp_path: Path):
    """ENOSPC while writing: the blob's temporary file is pointed at /dev/full."""
    cache = tmp_path / "cache"
    sha256 = hashlib.sha256((hub_root / REPO / "model.safetensors").read_bytes()).hexdigest()
    blobs = cache / "models--acme--tiny" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{sha256}.incomplete").symlink_to("/dev/full")
    with serve(hub_root) as endpoint:
        result = hf(endpoint, cache, REPO)
        commit = commit_of(endpoint)
    assert result.returncode == 1
    assert "no space left on device" in result.stderr and "HF_HOME/--cache-dir" in result.stderr
    assert not (cache / "models--acme--tiny" / "snapshots" / commit / "model.safetensors").is_symlink()
    assert not (blobs / sha256).exists()


def test_the_labs_standin_repos_download_for_every_profile_model(tmp_path: Path):
    from vllm_fleet_lab.config import LabPaths
    from vllm_fleet_lab.hub import model_ids, write_repos

    paths = LabPaths(tmp_path / "lab")
    ids = write_repos(paths)
    profiles = yaml.safe_load((ROOT / "src/vllm_fleet/data/profiles.yml").read_text())
    assert set(ids) == set(profiles["models"]) == set(model_ids())
    assert {"nvidia/Qwen3.6-35B-A3B-NVFP4", "Qwen/Qwen3.6-35B-A3B"} <= set(ids)
    with serve(paths.hub) as endpoint:
        for model_id in ids:
            result = hf(endpoint, tmp_path / "cache", model_id, "--revision", "main")
            assert result.returncode == 0, result.stderr
            snapshot = Path(result.stdout.strip())
            assert sorted(p.name for p in snapshot.iterdir()) == ["README.md", "config.json", "model.safetensors"]
            assert "STAND-IN" in json.loads((snapshot / "config.json").read_text())["_vllm_fleet_standin"]
            blob = (snapshot / "model.safetensors").read_bytes()
            header_len = int.from_bytes(blob[:8], "little")
            header = json.loads(blob[8:8 + header_len])
            assert header["standin.weight"]["data_offsets"][1] == len(blob) - 8 - header_len
            assert 1024 < len(blob) < 16384


# --- on a lab host: the role's own command ---------------------------------------------------------


def _prefetch_argv(variables: dict) -> list[str]:
    """roles/vllm/defaults/main.yml's vllm_prefetch_command, rendered as Ansible would."""
    import jinja2

    defaults = yaml.safe_load((ROOT / "roles/vllm/defaults/main.yml").read_text())
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return [env.from_string(item).render(**variables) for item in defaults["vllm_prefetch_command"]]


@pytest.mark.lab
def test_the_roles_prefetch_command_fills_the_cache_on_a_lab_host(first_converge, fresh_lab):
    """The role's command against the gated hub, on a converged host (Docker and the image are
    there): with the lab's token in the mounted secrets directory it downloads a model; with that
    directory empty the hub refuses. (That the hub serves every profile's model, through the real
    client, is test_the_labs_standin_repos_download_for_every_profile_model's.)"""
    lab = fresh_lab
    offline = yaml.safe_load((lab.paths.inventory / "group_vars/all/offline.yml").read_text())
    endpoint = offline["vllm_hf_endpoint"]
    assert endpoint == lab.record["hub"]["url"]
    lab_vars = yaml.safe_load((lab.paths.inventory / "group_vars/all/lab.yml").read_text())
    token = lab_vars["vault_vllm_fleet_hf_token"]
    image = lab.record["image"]
    name = FALLBACK  # the hopper stream drills hosts 1 and 2 meanwhile
    host = lab.host(name)
    if host.run("systemctl is-active docker").rc != 0:  # a fresh lab: the docker role has not run
        lab.dirty(name)
        install = host.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                           "--no-install-recommends docker.io && systemctl is-active docker")
        assert install.rc == 0, install.stderr
    pull = host.run(f"docker pull -q {image}")
    assert pull.rc == 0, pull.stderr

    work = f"/tmp/hf-prefetch-test-{uuid.uuid4().hex[:8]}"  # not the role's cache: no marker games
    cache, secrets, empty = f"{work}/cache", f"{work}/secrets", f"{work}/empty"
    host.check_output(f"mkdir -p {cache} {empty} && mkdir -m 0700 {secrets}")
    # Through stdin, as the role copies it: the token is on no command line.
    subprocess.run(["docker", "exec", "-i", name, "sh", "-c", f"umask 077 && cat > {secrets}/hf-token"],
                   input=token, text=True, check=True)

    def argv(model_id: str, secrets_dir: str) -> list[str]:
        return _prefetch_argv({
            "vllm_docker_bin": "docker", "vllm_hf_endpoint": endpoint, "vllm_hf_cache_dir": cache,
            "vllm_image_ref": image, "vllm_plan": {"serving": {"model": {"id": model_id, "revision": "main"}}},
            "vllm_prefetch_secrets_dir": secrets_dir, "vllm_container_secrets_dir": "/run/secrets/vllm-fleet",
        })

    try:
        models = lab.record["hub"]["models"]
        refused = host.run(shlex.join(argv(models[0], empty)))
        assert refused.rc == 1 and "access denied" in refused.stderr, refused.stdout + refused.stderr
        for model_id in models[:1]:
            cmd = argv(model_id, secrets)
            assert cmd[cmd.index("--entrypoint") + 1] == "hf" and f"HF_ENDPOINT={endpoint}" in cmd
            assert token not in " ".join(cmd)
            result = host.run(shlex.join(cmd))
            assert result.rc == 0, f"{shlex.join(cmd)}\n{result.stdout}\n{result.stderr}"
            assert token not in result.stdout + result.stderr
            storage = f"{cache}/hub/models--{model_id.replace('/', '--')}"
            commit = host.file(f"{storage}/refs/main").content_string
            assert len(commit) == 40
            assert result.stdout.strip() == f"/root/.cache/huggingface/hub/models--{model_id.replace('/', '--')}/snapshots/{commit}"
            for fname in ("config.json", "README.md", "model.safetensors"):
                link = host.file(f"{storage}/snapshots/{commit}/{fname}")
                assert link.is_symlink and link.linked_to.startswith(f"{storage}/blobs/")
                assert host.file(link.linked_to).is_file
            assert host.run(f"ls {storage}/blobs | grep -c incomplete").stdout.strip() == "0"
    finally:
        host.run(f"rm -rf {work}")
