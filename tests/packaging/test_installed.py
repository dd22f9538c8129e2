"""The wheel, the collection and the pre-commit hook as users get them: built from this checkout,
installed outside it, and run from a directory outside it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.installed import REPO, VERSION, Installed, venv
from tests.standin_server import MAX_LEN, standin

MODEL = "nvidia/Qwen3.6-35B-A3B-NVFP4"


def test_one_version_everywhere(installed: Installed) -> None:
    """The wheel, the collection, `--version` and the changelog's newest entry agree."""
    assert installed.run(installed.bin("vllm-fleet"), "--version").stdout.strip() == f"vllm-fleet {VERSION}"
    manifest = json.loads((installed.collections / "ansible_collections/vllm_fleet/fleet/MANIFEST.json").read_text())
    assert manifest["collection_info"]["version"] == VERSION
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(rf'^version = "{re.escape(VERSION)}"$', pyproject, re.M)
    assert re.search(r"^## (\S+)", (REPO / "CHANGELOG.md").read_text(), re.M).group(1) == VERSION
    # What the collection asks of the controller's Python, and what the execution environment installs.
    assert f"vllm-fleet[smoke]=={VERSION}" in (REPO / "requirements.txt").read_text().split()
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert ee["dependencies"]["galaxy"]["collections"][0]["name"].endswith(f"/{installed.collection.name}")


def test_lint_from_the_installed_wheel(installed: Installed) -> None:
    """The example inventory lints clean from the installed package; a broken copy fails with
    the rule, and nothing is read from the checkout (no schemas/ or data/ beside the cwd)."""
    inv = installed.work / "inventory"
    shutil.copytree(REPO / "inventory" / "example", inv)
    clean = installed.run(installed.bin("vllm-fleet"), "lint", "--strict", "inventory")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    (inv / "host_vars" / "h200-01.example.net.yml").write_text(
        "vllm_fleet_gpu: {name: NVIDIA A100-SXM4-80GB, compute_capability: '8.0', memory_mib: 81920, count: 1}\n")
    broken = installed.run(installed.bin("vllm-fleet"), "lint", "inventory")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "VF101 host=h200-01.example.net" in broken.stdout
    assert "internal error" not in broken.stdout + broken.stderr


def test_lint_only_install_is_small(tmp_path: Path, installed: Installed) -> None:
    """`pip install vllm-fleet` brings what lint needs and nothing of smoke or bench."""
    lint_env = venv(tmp_path / "lint-only", installed.wheel)
    empty = venv(tmp_path / "empty")
    freeze = subprocess.run([lint_env / "bin" / "pip", "freeze", "--disable-pip-version-check"],
                            capture_output=True, text=True, check=True).stdout.split()
    size = sum(p.stat().st_size for p in lint_env.rglob("*") if p.is_file())
    base = sum(p.stat().st_size for p in empty.rglob("*") if p.is_file())
    print(f"lint-only install: {len(freeze)} distributions, {(size - base) / 2**20:.1f} MiB over an empty venv "
          f"(was 45 packages / 268 MB)")
    names = {line.split("==")[0].lower() for line in freeze}
    assert not names & {"pytest", "httpx", "matplotlib", "numpy", "ansible-runner", "ansible-core"}
    assert len(freeze) <= 10 and size - base < 30 * 2**20


def test_smoke_from_the_installed_wheel_against_the_standin(installed: Installed, tmp_path: Path) -> None:
    """The suite is package data: the installed `vllm-fleet smoke` runs it from site-packages."""
    with standin(tmp_path, "hopper") as url:
        out = installed.work / "smoke.json"
        proc = installed.run(installed.bin("vllm-fleet"), "smoke", "--url", url, "--model", MODEL,
                             "--max-model-len", str(MAX_LEN), "--vllm-version", "0.28.0", "--expect-tools",
                             "--json", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert doc["passed"] and doc["counts"]["failed"] == 0 and doc["counts"]["passed"] >= 10
    assert all("site-packages" not in c["module"] for c in doc["checks"])


def test_pre_commit_hook_from_the_repository(installed: Installed, tmp_path: Path) -> None:
    """The shipped hook through `pre-commit try-repo`, in a user's repository with an inventory."""
    user = tmp_path / "user-repo"
    shutil.copytree(REPO / "inventory" / "example", user / "inventory")
    git = ["git", "-c", "user.email=u@example.net", "-c", "user.name=u"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "inventory"]):
        subprocess.run(git + argv, cwd=user, check=True, capture_output=True)
    env = {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "PIP_CONSTRAINT": str(REPO / "constraints.txt")}
    pre_commit = Path(sys.executable).parent / "pre-commit"
    clean = installed.run(pre_commit, "try-repo", REPO, "vllm-fleet-lint", "--all-files", cwd=user, timeout=900, **env)
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-2000:]
    (user / "inventory" / "group_vars" / "spark.yml").write_text(
        (user / "inventory" / "group_vars" / "spark.yml").read_text().replace("aarch64", "x86_64"))
    broken = installed.run(pre_commit, "try-repo", REPO, "vllm-fleet-lint", "--all-files", cwd=user, timeout=900, **env)
    assert broken.returncode == 1, broken.stdout[-3000:]
    assert "VF102" in broken.stdout


def test_collection_playbooks_run_by_full_name(installed: Installed) -> None:
    """From outside the checkout, with no ansible.cfg: the site playbook parses and the validation
    runs in-process (no vllm-fleet binary needed beside ansible-playbook)."""
    inv = installed.work / "inv-validate"
    shutil.copytree(REPO / "inventory" / "example", inv)
    playbook = installed.bin("ansible-playbook")
    syntax = installed.run(playbook, "-i", inv, "vllm_fleet.fleet.site", "--syntax-check")
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    ok = installed.run(playbook, "-i", inv, "vllm_fleet.fleet.validate", "-e", "vault_vllm_fleet_api_key=k")
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-2000:]
    # A site that runs its plays under the free strategy: the validation play keeps the host loop
    # its add_host needs (the free strategy refuses add_host).
    free = installed.run(playbook, "-i", inv, "vllm_fleet.fleet.validate", "-e", "vault_vllm_fleet_api_key=k",
                         ANSIBLE_STRATEGY="free")
    assert free.returncode == 0, free.stdout[-3000:] + free.stderr[-2000:]
    (inv / "host_vars" / "spark-02.example.net.yml").write_text("vllm_fleet_bind_address: 10.1.2.3\nvllm_fleet_api_key: ''\n")
    bad = installed.run(playbook, "-i", inv, "vllm_fleet.fleet.validate", "-e", "vault_vllm_fleet_api_key=k")
    assert bad.returncode == 2
    assert "host=spark-02.example.net var=vllm_fleet_api_key: error VF402" in bad.stdout


def test_collection_without_the_package_says_what_to_install(installed: Installed, tmp_path: Path) -> None:
    bare = venv(tmp_path / "ansible-only", "ansible-core")
    inv = installed.work / "inv-bare"
    shutil.copytree(REPO / "inventory" / "example", inv)
    proc = installed.run(bare / "bin" / "ansible-playbook", "-i", inv, "vllm_fleet.fleet.validate")
    assert proc.returncode != 0
    text = " ".join((proc.stdout + proc.stderr).split())
    assert "needs the vllm-fleet Python package" in text
    assert f"{bare / 'bin' / 'python'}" in text and f"pip install 'vllm-fleet=={VERSION}'" in text


def test_execution_environment_build_context(installed: Installed, tmp_path: Path) -> None:
    """ansible-builder turns execution-environment.yml into a build context that installs the
    collection and the wheel (building the image needs a base image this machine cannot fetch)."""
    # Where a user runs it: the EE file beside dist/ (what `make dist` makes).
    shutil.copy(REPO / "execution-environment.yml", tmp_path)
    shutil.copytree(installed.dist, tmp_path / "dist")
    context = tmp_path / "context"
    builder = Path(sys.executable).parent / "ansible-builder"
    proc = subprocess.run([builder, "create", "-f", "execution-environment.yml", "--context", context],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No matches" not in proc.stdout + proc.stderr
    # Containerfile for podman, Dockerfile where only docker is installed: the same content.
    containerfile = next(context / n for n in ("Containerfile", "Dockerfile") if (context / n).exists()).read_text()
    assert "ansible-galaxy collection install" in containerfile
    assert "ENV PIP_FIND_LINKS=/build/dist" in containerfile
    build_files = {p.name for p in (context / "_build").rglob("*") if p.is_file()}
    assert installed.wheel.name in build_files and installed.collection.name in build_files
