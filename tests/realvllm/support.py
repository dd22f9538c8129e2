"""Shared helpers of the realvllm tests (paths, the real-vLLM venv, timings, serve.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "lab" / "real-vllm" / "install.sh"
BUILDER = REPO / "lab" / "tiny-qwen3" / "build_model.py"
LOG_DIR = REPO / ".lab" / "real-vllm" / "logs"
TIMINGS_FILE = REPO / ".lab" / "real-vllm" / "timings.json"
API_KEY = "realvllm-test-key"
VLLM_VERSION = "0.32.0"


def _load(name: str, path: Path) -> ModuleType:
    # lab/real-vllm is not a package (hyphenated dir); load serve.py by path.
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


serve = _load("realvllm_serve", REPO / "lab" / "real-vllm" / "serve.py")

# Seconds per phase, printed at the end of the session and kept in TIMINGS_FILE.
TIMINGS: dict[str, float] = {}


def venv_dir() -> Path:
    return serve.venv_dir()


def venv_ready() -> bool:
    return (venv_dir() / f".vllm-fleet-installed-{VLLM_VERSION}").is_file()


def skip_reason() -> str | None:
    flag = os.environ.get("VLLM_FLEET_REAL_VLLM", "")
    if flag == "1":
        return None
    if flag == "0":
        return "VLLM_FLEET_REAL_VLLM=0"
    if venv_ready():
        return None
    return (f"real vLLM venv absent ({venv_dir()}); run lab/real-vllm/install.sh "
            "(~1.5-3 min, ~3.4 GiB) or set VLLM_FLEET_REAL_VLLM=1")


def run_in_venv(python: Path, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """Run with the real-vLLM venv's python; the product's PYTHONPATH must not leak in."""
    env = {**os.environ, **serve.RUNTIME_ENV, **kwargs.pop("env", {})}
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(python), *args], capture_output=True, text=True, env=env, **kwargs)


PARSER = REPO / "lab" / "real-vllm" / "parse_serve_args.py"
# Argument lists real vLLM must reject (and the stand-in must reject the same way).
CLI_NEGATIVE: dict[str, list[str]] = {
    "unknown-flag": ["m", "--bogus-flag", "1"],
    "bad-choice": ["m", "--kv-cache-dtype", "fp9"],
    "auto-tool-without-parser": ["m", "--enable-auto-tool-choice"],
    "tool-parser-named-qwen3": ["m", "--enable-auto-tool-choice", "--tool-call-parser", "qwen3"],
    "bogus-reasoning-parser": ["m", "--reasoning-parser", "bogus"],
}


def rendered_cases() -> dict[str, list[str]]:
    """Every profile's `vllm serve` args (product renderer), plus the lab's own serve command."""
    from vllm_fleet.serving.profiles import profile_names, resolve_serving
    from vllm_fleet.serving.args import serve_args

    cases = {f"profile:{name}": serve_args(resolve_serving(name)) for name in profile_names()}
    cases["lab:serve.py"] = serve.serve_command("/models/tiny", 8000, api_key="k")[2:]
    return cases
