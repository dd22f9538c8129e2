"""Real vLLM 0.32.0 (CPU build) accepts the lab CPU profile's `vllm serve` arguments for every
profile: its own parser, its serve-time validators and its engine config (platform checks,
model limits) with the tiny model. No server starts (one venv subprocess, ~20 s).

The contrast cases are why cpu-profile.yml changes what it changes: the profile's own values that
the CPU build or the tiny model refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.realvllm.support import REPO, run_in_venv
from vllm_fleet_lab.cpu_profile import cpu_overrides
from vllm_fleet.serving.profiles import profile_names, resolve_serving
from vllm_fleet.serving.args import serve_args

CHECK = r"""
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
from parse_serve_args import build_parser, check
from vllm.engine.arg_utils import AsyncEngineArgs
parser, serve = build_parser()
out = {}
for name, args in json.load(sys.stdin).items():
    result = check(parser, serve, args)
    if result["ok"]:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                ns = parser.parse_args(["serve", *args])
                ns.model = ns.model_tag  # what `vllm serve` does with the positional model
                cfg = AsyncEngineArgs.from_cli_args(ns).create_engine_config()
            result["engine"] = {"dtype": str(cfg.model_config.dtype), "kv": cfg.cache_config.cache_dtype,
                                "tp": cfg.parallel_config.tensor_parallel_size,
                                "max_model_len": cfg.model_config.max_model_len}
        except BaseException as exc:
            result = {"ok": False, "stage": "engine_config", "error": f"{type(exc).__name__}: {exc}"[:500]}
    out[name] = result
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def engine_checks(venv_python: Path, tiny_models: dict[str, Path]) -> dict[str, Any]:
    model = str(tiny_models["dense"])
    cases: dict[str, list[str]] = {}
    for name in profile_names():
        overrides, _ = cpu_overrides(name)
        args = serve_args(resolve_serving(name, overrides))
        cases[f"cpu:{name}"] = [model, *args[1:]]  # the local tiny model instead of the hub id
    base = [model, "--max-model-len", "4096", "--dtype", "float32", "--enforce-eager"]
    cases["contrast:mtp"] = base + ["--speculative-config", '{"method":"mtp","num_speculative_tokens":2}']
    cases["contrast:max_model_len"] = [model, "--max-model-len", "262144", "--dtype", "float32"]
    cases["contrast:dtype-auto"] = [model, "--max-model-len", "4096"]
    proc = run_in_venv(venv_python, ["-c", CHECK, str(REPO / "lab" / "real-vllm")],
                       input=json.dumps(cases), timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", profile_names())
def test_cpu_profile_args_are_accepted(engine_checks: dict[str, Any], name: str) -> None:
    result = engine_checks[f"cpu:{name}"]
    assert result["ok"], result
    assert result["engine"] == {"dtype": "torch.float32", "kv": "auto", "tp": 1, "max_model_len": 4096}


def test_what_the_cpu_profile_removes_is_refused(engine_checks: dict[str, Any]) -> None:
    assert not engine_checks["contrast:mtp"]["ok"]
    assert "Unsupported speculative method" in engine_checks["contrast:mtp"]["error"]
    assert not engine_checks["contrast:max_model_len"]["ok"]
    # dtype auto serves the float32 checkpoint as bfloat16 on x86: hence --dtype float32.
    assert engine_checks["contrast:dtype-auto"]["engine"]["dtype"] == "torch.bfloat16"
