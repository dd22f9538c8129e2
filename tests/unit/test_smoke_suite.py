"""`vllm-fleet smoke` against the lab's vLLM stand-in: a good deployment passes every check, and
each known misconfiguration fails exactly the checks that name it.

The stand-in runs with the flags the profile renders (vllm_fleet.serve_args), max_model_len
4096 so long prompts stay cheap. The CLI runs as a subprocess because it runs pytest itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.standin_server import MAX_LEN, STANDIN, free_port, standin
from vllm_fleet import cli
from vllm_fleet.smoke import parsers, runner, target

REPO = Path(__file__).resolve().parents[2]
MODEL = "nvidia/Qwen3.6-35B-A3B-NVFP4"
API_CHECKS = {"test_health", "test_models", "test_version", "test_real_completion", "test_reasoning_parsed",
              "test_reasoning_parsed_streaming", "test_thinking_off", "test_tool_calling",
              "test_spec_decode_metrics", "test_api_key_enforced", "test_over_limit_prompt", "test_long_prompt"}
HOST_CHECKS = {"test_unit_active_enabled", "test_container_runs_pinned_digest_and_args",
               "test_gpus_visible_in_container", "test_no_engine_errors_in_journal"}
GENERATING = {"test_real_completion", "test_reasoning_parsed", "test_reasoning_parsed_streaming",
              "test_thinking_off", "test_tool_calling", "test_spec_decode_metrics"}

def run_smoke(tmp_path: Path, url: str, *extra: str, key: str | None = None,
              expect: tuple[str, ...] = ("--expect-tools", "--expect-spec-decode")) -> tuple[int, dict, str]:
    out = tmp_path / "smoke.json"
    argv = ["smoke", "--url", url, "--model", MODEL, "--max-model-len", str(MAX_LEN), "--vllm-version", "0.28.0",
            "--json", str(out), "--junit", str(tmp_path / "smoke.xml"), *expect, *extra]
    if key is not None:
        key_file = tmp_path / "api-key"
        key_file.write_text(key + "\n")
        argv += ["--api-key-file", str(key_file)]
    code = f"import sys; from vllm_fleet.cli import main; sys.exit(main({argv!r}))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.exists(), f"no JSON written; exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    doc = json.loads(out.read_text())
    doc["junit"] = (tmp_path / "smoke.xml").read_text()
    return proc.returncode, doc, proc.stdout


def outcomes(doc: dict) -> dict[str, str]:
    return {c["check"]: c["outcome"] for c in doc["checks"]}


def failed(doc: dict) -> set[str]:
    return {name for name, outcome in outcomes(doc).items() if outcome in ("failed", "error")}


def message(doc: dict, check: str) -> str:
    return next(c["message"] for c in doc["checks"] if c["check"] == check)


# --- against the stand-in ---------------------------------------------------------------------
# Each scenario: a stand-in configuration and the smoke options. They run in parallel (the
# stand-in mostly sleeps), once per module, and each test below asserts on its own scenario.
SPARK_ENV = {"VLLM_STANDIN_GPU": "NVIDIA GB10,[N/A],12.1",
             # the one-pass prefill ceiling lowered so a 0.9 x 4096 prompt crosses it
             "VLLM_STANDIN_SPARK_PREFILL_LIMIT": "2048",
             "PATH": "/usr/bin:/bin"}  # no nvidia-smi on PATH: the GPU comes from the env
SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "good": ({"extra": ("--api-key", "s3cret")}, {"key": "s3cret"}),
    "no_reasoning_parser": ({"drop": ("--reasoning-parser",)}, {}),
    "spark_no_chunked_prefill": ({"profile": "spark", "serving": {"enable_chunked_prefill": False},
                                  "env": SPARK_ENV}, {}),
    "wrong_max_model_len": ({"serving": {"max_model_len": 8192}}, {}),
    "wrong_model": ({"served_name": "Qwen/Qwen3.6-35B-A3B"}, {}),
    "engine_dead": ({"env": {"VLLM_STANDIN_FAULT": "engine_dead"}}, {}),
    "api_key_not_enforced": ({}, {"key": "s3cret"}),
    "hopper_not_expected": ({"profile": "hopper"}, {"expect": ()}),
}


def _run_scenario(tmp_path: Path, name: str) -> tuple[int, dict, str]:
    server_kw, smoke_kw = SCENARIOS[name]
    with standin(tmp_path, **server_kw) as url:
        return run_smoke(tmp_path, url, **smoke_kw)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    if not STANDIN.exists():
        pytest.skip(f"the vLLM stand-in is not at {STANDIN}")
    # "good" runs alone first: its duration is the suite's time against the stand-in, which
    # the fault scenarios running beside it would inflate.
    results = {"good": _run_scenario(tmp_path_factory.mktemp("good"), "good")}
    faults = [name for name in SCENARIOS if name != "good"]
    with ThreadPoolExecutor(max_workers=len(faults)) as pool:
        futures = {name: pool.submit(_run_scenario, tmp_path_factory.mktemp(name), name) for name in faults}
        results.update({name: future.result() for name, future in futures.items()})
    return results.__getitem__


def test_good_deployment_passes_every_check(scenario) -> None:
    code, doc, stdout = scenario("good")
    assert code == 0, stdout
    assert set(outcomes(doc)) == API_CHECKS | HOST_CHECKS
    assert {n for n, o in outcomes(doc).items() if o == "passed"} == API_CHECKS
    assert {n for n, o in outcomes(doc).items() if o == "skipped"} == HOST_CHECKS
    spec = next(c for c in doc["checks"] if c["check"] == "test_spec_decode_metrics")
    assert 0.5 < spec["properties"]["spec_decode_acceptance_rate"] <= 1.0
    assert "all checks passed" in stdout
    assert doc["junit"].count("<testcase") == len(API_CHECKS | HOST_CHECKS)
    assert doc["duration_s"] < 15, f"the suite took {doc['duration_s']:.1f} s against the stand-in"


def test_missing_reasoning_parser_fails_the_reasoning_checks(scenario) -> None:
    code, doc, stdout = scenario("no_reasoning_parser")
    assert code == 1
    assert failed(doc) == {"test_reasoning_parsed", "test_reasoning_parsed_streaming"}
    assert "</think> leaked into content" in message(doc, "test_reasoning_parsed")
    assert "FAIL  test_reasoning_parsed: </think> leaked into content" in stdout


def test_spark_without_chunked_prefill_fails_the_long_prompt(scenario) -> None:
    code, doc, _ = scenario("spark_no_chunked_prefill")
    assert code == 1
    assert failed(doc) == {"test_long_prompt"}
    assert "chunked prefill" in message(doc, "test_long_prompt")


def test_wrong_max_model_len_fails_models(scenario) -> None:
    code, doc, _ = scenario("wrong_max_model_len")
    assert code == 1
    assert failed(doc) == {"test_models"}
    assert "max_model_len is 8192, expected 4096" in message(doc, "test_models")


def test_wrong_model_fails_models_and_every_request(scenario) -> None:
    code, doc, _ = scenario("wrong_model")
    assert code == 1
    assert failed(doc) == GENERATING | {"test_models", "test_over_limit_prompt", "test_long_prompt"}
    assert "serves ['Qwen/Qwen3.6-35B-A3B']" in message(doc, "test_models")
    assert "HTTP 404" in message(doc, "test_real_completion")


def test_dead_engine_behind_a_healthy_health_endpoint(scenario) -> None:
    code, doc, _ = scenario("engine_dead")
    assert code == 1
    assert outcomes(doc)["test_health"] == "passed"
    assert failed(doc) == GENERATING | {"test_long_prompt"}
    assert "HTTP 500: EngineCore encountered an issue" in message(doc, "test_real_completion")


def test_unenforced_api_key_fails_only_that_check(scenario) -> None:
    code, doc, _ = scenario("api_key_not_enforced")
    assert code == 1
    assert failed(doc) == {"test_api_key_enforced"}
    assert "not 401" in message(doc, "test_api_key_enforced")


def test_checks_not_expected_are_skipped_with_a_reason(scenario) -> None:
    code, doc, _ = scenario("hopper_not_expected")
    assert code == 0
    assert outcomes(doc)["test_tool_calling"] == "skipped"
    assert "--expect-tools" in message(doc, "test_tool_calling")
    assert "--expect-spec-decode" in message(doc, "test_spec_decode_metrics")


def test_unreachable_server_fails_with_a_sentence(tmp_path: Path) -> None:
    code, doc, stdout = run_smoke(tmp_path, f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert "cannot reach" in message(doc, "test_health")


def test_missing_flags_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["smoke", "--url", "http://127.0.0.1:1"]) == runner.EXIT_USAGE
    assert "give --model, --max-model-len" in capsys.readouterr().err


# --- from the inventory -----------------------------------------------------------------------

def test_inventory_host_gives_url_and_expectations(monkeypatch: pytest.MonkeyPatch) -> None:
    host_vars = {"ansible_host": "10.0.0.7", "vllm_fleet_profile": "spark", "vllm_fleet_api_key": "k3y",
                 "vllm_fleet_overrides": {"serving": {"max_model_len": 32768}},
                 "vllm_fleet_instances": [{"name": "main", "gpus": [0], "port": 8001}]}
    inventory = types.SimpleNamespace(hosts={"spark1": types.SimpleNamespace(vars=host_vars)})
    fake = types.ModuleType("vllm_fleet.inventory")
    fake.load_inventory = lambda paths: inventory  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm_fleet.inventory", fake)
    t = target.target_from_inventory(["inv"], "spark1", None, host_checks=True)
    assert (t.url, t.model, t.max_model_len, t.vllm_version) == ("http://10.0.0.7:8001", MODEL, 32768, "0.28.0")
    assert t.expect_tools and t.expect_spec_decode
    assert Path(t.api_key_file).read_text() == "k3y" and t.api_key_file in t.temp_files
    assert (t.host, t.unit, t.container) == (f"ansible://spark1?ansible_inventory={Path('inv').resolve()}",
                                            "vllm@main.service", "vllm-main")
    assert "--max-model-len" in json.loads(Path(t.expected_args_file).read_text())
    with pytest.raises(runner.SmokeError, match="no instance 'other'"):
        target.target_from_inventory(["inv"], "spark1", "other", host_checks=False)


# --- the parsers the host-side checks rely on ----------------------------------------------------

def test_engine_errors_are_found_but_normal_engine_logs_are_not() -> None:
    lines = ["(EngineCore_DP0 pid=7) INFO 11-27 10:00:00 [core.py] init engine took 12 s",
             "(EngineCore_DP0 pid=7) ERROR 11-27 10:01:00 [core.py] EngineCore encountered a fatal error.",
             "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"]
    assert parsers.engine_error_lines(lines) == lines[1:]


def test_container_args_must_contain_the_rendered_args() -> None:
    expected = ["m", "--max-model-len", "4096", "--enable-chunked-prefill"]
    assert parsers.args_difference(expected, ["vllm", "serve", *expected]) is None
    problem = parsers.args_difference(expected, ["vllm", "serve", "m", "--max-model-len", "4096"])
    assert problem and problem.startswith("missing --enable-chunked-prefill")


def test_digest_from_reference_or_repo_digests() -> None:
    digest = "sha256:" + "a" * 64
    assert parsers.image_digest_matches(f"docker.io/vllm/vllm-openai@{digest}", [], digest)
    assert parsers.image_digest_matches("vllm/vllm-openai:v0.28.0", [f"vllm/vllm-openai@{digest}"], digest)
    assert not parsers.image_digest_matches("vllm/vllm-openai:v0.28.0", [], digest)


def test_spec_counters_from_prometheus_text() -> None:
    text = ('# TYPE vllm:spec_decode_num_draft_tokens counter\n'
            'vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="m"} 30.0\n'
            '# TYPE vllm:spec_decode_num_accepted_tokens counter\n'
            'vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 24.0\n')
    assert parsers.spec_counters(text) == (24.0, 30.0)
    assert parsers.spec_counters("# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 0\n") is None
