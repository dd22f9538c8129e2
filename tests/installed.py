"""The product as users get it: the wheel and the collection built from this checkout, installed
into a fresh virtualenv and collections path outside the repository. Tests run them from a
directory outside the checkout, so nothing can lean on the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
VERSION = str(yaml.safe_load((REPO / "galaxy.yml").read_text())["version"])


@dataclass(frozen=True)
class Installed:
    root: Path
    dist: Path
    wheel: Path
    collection: Path
    venv: Path
    collections: Path
    work: Path

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def env(self, **extra: str) -> dict[str, str]:
        """An environment with only the installed product: no ANSIBLE_CONFIG of this checkout,
        no PYTHONPATH into it, the venv's bin first on PATH."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ANSIBLE_", "PYTHON", "VIRTUAL_ENV", "PIP_REQUIRE"))}
        env.update(PATH=f"{self.venv / 'bin'}:{env.get('PATH', '')}",
                   ANSIBLE_COLLECTIONS_PATH=str(self.collections), ANSIBLE_NOCOLOR="1", **extra)
        return env

    def run(self, *argv: str | Path, cwd: Path | None = None, timeout: int = 600,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(a) for a in argv], cwd=cwd or self.work, env=self.env(**env),
                              capture_output=True, text=True, timeout=timeout)


def _check(argv: list[str | Path], cwd: Path = REPO, timeout: int = 900) -> None:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def build(dist: Path) -> tuple[Path, Path]:
    """The wheel (python -m build) and the collection (ansible-galaxy collection build)."""
    bindir = Path(sys.executable).parent
    _check([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, REPO])
    _check([bindir / "ansible-galaxy", "collection", "build", "--force", "--output-path", dist, REPO])
    return dist / f"vllm_fleet-{VERSION}-py3-none-any.whl", dist / f"vllm_fleet-fleet-{VERSION}.tar.gz"


def venv(path: Path, *requirements: str | Path) -> Path:
    """A fresh virtualenv with `requirements`, this checkout's constraints applied (the repo's CI
    stays pinned; the product itself declares ranges)."""
    _check([sys.executable, "-m", "venv", path])
    if requirements:
        _check([path / "bin" / "pip", "install", "-q", "--disable-pip-version-check",
                "-c", REPO / "constraints.txt", *requirements])
    return path


def ee_requirements() -> list[str]:
    """What execution-environment.yml puts into the execution environment besides the collection:
    ansible-core, ansible-runner (what AWX runs a job with), and the collection's own Python
    requirements (meta/execution-environment.yml)."""
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())["dependencies"]
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())["dependencies"]
    listed = (REPO / meta["python"]).read_text().splitlines()
    return [ee["ansible_core"]["package_pip"], ee["ansible_runner"]["package_pip"],
            *(line.strip() for line in listed if line.strip() and not line.lstrip().startswith("#"))]


def install(root: Path) -> Installed:
    """The execution environment's contents in a venv: the collection's requirements resolve to
    the wheel just built (ansible-builder finds it in dist/ the same way)."""
    dist = root / "dist"
    wheel, collection = build(dist)
    env_dir = venv(root / "venv", f"{wheel}[smoke]", *ee_requirements())
    collections = root / "collections"
    _check([env_dir / "bin" / "ansible-galaxy", "collection", "install", "-p", collections, collection], cwd=root)
    work = root / "work"
    work.mkdir()
    return Installed(root, dist, wheel, collection, env_dir, collections, work)
