"""The cases the vllm role's files are rendered for (every serving profile, plus one with hostile
quoting) and their instances; tests/unit/conftest.py renders them once per session."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from vllm_fleet.serving.profiles import profile_names, resolve_serving

REPO = Path(__file__).resolve().parents[2]
# Quotes, $ and spaces: the secrets file is sourced by sh, so the key must survive its parsing.
API_KEY = "sk-unit-test-SECRET-7f3a'$HOME \"x\" `y`"
# Characters that break naive quoting in systemd (%, $, \, quotes) and in shells (spaces, ').
NASTY_JSON = json.dumps({"note": "it's \"quoted\" $HOME %i %% \\n {braces} ; `x`", "temperature": 0.6})
CASES = {name: {} for name in profile_names()}
CASES["nasty-args"] = {
    "profile": "spark",
    "overrides": {
        "serving": {"extra_args": ["--override-generation-config", NASTY_JSON, "--served-model-name", "a b"]},
        "env": {"WEIRD_VALUE": "a b $c 'd' \"e\" %f"},
    },
}

ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
FAKE_DOCKER = """#!{python}
import json, sys
with open({out!r}, "w") as fh:
    json.dump(sys.argv[1:], fh)
"""


def _case_profile(case: str) -> str:
    return CASES[case].get("profile", case)


def _unified(case: str) -> bool:
    """Spark cases declare unified memory, as a DGX Spark's inventory does."""
    return _case_profile(case) == "spark"


def _instances(profile: str) -> tuple[int, list[dict]]:
    tp = int(resolve_serving(profile)["serving"]["tensor_parallel_size"])
    # Two GPUs per instance and two instances where TP is 1, to cover --gpus and ports.
    if tp == 1:
        return 2, [{"name": "gpu0", "gpus": [0], "port": 8000}, {"name": "gpu-1", "gpus": [1], "port": 8001}]
    return tp, [{"name": "main", "gpus": list(range(tp)), "port": 8000}]


def load_source(path: Path, name: str) -> ModuleType:
    """A Python file of the roles or plugins (no .py suffix needed) as a module."""
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
