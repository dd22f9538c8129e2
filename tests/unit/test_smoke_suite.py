"""`vllm-fleet smoke` against the lab's vLLM stand-in: a good deployment passes every check, and
each known misconfiguration fails exactly the checks that name it.

The stand-in runs with the flags the profile renders (vllm_fleet.serve_args), max_model_len
4096 so long prompts stay cheap. The CLI runs as a subprocess because it runs pytest itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.local_server import free_port
from tests.standin_server import MAX_LEN, STANDIN, standin
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
              expect: tuple[str, ...] = ("--expect-tools", "--expect-spec-decode"),
              env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    out = tmp_path / "smoke.json"
    argv = ["smoke", "--url", url, "--model", MODEL, "--max-model-len", str(MAX_LEN), "--vllm-version", "0.28.0",
            "--json", str(out), "--junit", str(tmp_path / "smoke.xml"), *expect, *extra]
    if key is not None:
        key_file = tmp_path / "api-key"
        key_file.write_text(key + "\n")
        argv += ["--api-key-file", str(key_file)]
    code = f"import sys; from vllm_fleet.cli import main; sys.exit(main({argv!r}))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
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
    # A key is checked only through the proxy (the lab's spark host): vLLM alone leaves paths open.
    "good": ({}, {}),
    # vLLM's own key, checked as if it were the proxy (fails) and as vLLM on loopback (passes).
    "key_without_proxy": ({"extra": ("--api-key", "s3cret")},
                          {"key": "s3cret", "expect": ("--expect-tools", "--expect-spec-decode", "--expect-proxy")}),
    "key_on_loopback": ({"extra": ("--api-key", "s3cret")}, {"key": "s3cret"}),
    "no_reasoning_parser": ({"drop": ("--reasoning-parser",)}, {}),
    "spark_no_chunked_prefill": ({"profile": "spark", "serving": {"enable_chunked_prefill": False},
                                  "env": SPARK_ENV}, {}),
    "wrong_max_model_len": ({"serving": {"max_model_len": 8192}}, {}),
    "wrong_model": ({"served_name": "Qwen/Qwen3.6-35B-A3B"}, {}),
    "engine_dead": ({"env": {"VLLM_STANDIN_FAULT": "engine_dead"}}, {}),
    "api_key_not_enforced": ({}, {"key": "s3cret"}),
    "hopper_not_expected": ({"profile": "hopper"}, {"expect": ()}),
    # Run from a CI job's own pytest session, whose settings name a plugin and an option the
    # smoke suite does not have.
    "callers_pytest_env": ({}, {"env": {"PYTEST_ADDOPTS": "-p no_such_plugin_of_the_caller --no-such-option",
                                        "PYTEST_PLUGINS": "another_missing_plugin"}}),
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
    with ThreadPoolExecutor(max_workers=len(SCENARIOS) - 1) as pool:
        futures = {"good": pool.submit(_run_scenario, tmp_path_factory.mktemp("good"), "good")}
        futures["good"].exception()
        futures.update({name: pool.submit(_run_scenario, tmp_path_factory.mktemp(name), name)
                        for name in SCENARIOS if name != "good"})
        wait(futures.values())
    # A scenario that could not run fails its own tests only.
    return lambda name: futures[name].result()


def test_good_deployment_passes_every_check(scenario) -> None:
    code, doc, stdout = scenario("good")
    assert code == 0, stdout
    assert set(outcomes(doc)) == API_CHECKS | HOST_CHECKS
    assert {n for n, o in outcomes(doc).items() if o == "passed"} == API_CHECKS - {"test_api_key_enforced"}
    assert {n for n, o in outcomes(doc).items() if o == "skipped"} == HOST_CHECKS | {"test_api_key_enforced"}
    spec = next(c for c in doc["checks"] if c["check"] == "test_spec_decode_metrics")
    assert 0.5 < spec["properties"]["spec_decode_acceptance_rate"] <= 1.0
    assert "all checks passed" in stdout
    assert doc["junit"].count("<testcase") == len(API_CHECKS | HOST_CHECKS)
    assert doc["duration_s"] < 15, f"the suite took {doc['duration_s']:.1f} s against the stand-in"


def test_the_callers_pytest_settings_do_not_reach_the_suite(scenario) -> None:
    code, doc, stdout = scenario("callers_pytest_env")
    assert code == 0, stdout
    assert {n for n, o in outcomes(doc).items() if o == "passed"} == API_CHECKS - {"test_api_key_enforced"}


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
    assert "GET /v1/models (200)" in message(doc, "test_api_key_enforced")


def test_vllms_own_key_leaves_inference_paths_open(scenario) -> None:
    """vLLM's --api-key guards /v1 only (vllm issue #58144): the stand-in, like real vLLM,
    answers /invocations and /tokenize without it, and the check that expects a proxy names them."""
    code, doc, _ = scenario("key_without_proxy")
    assert code == 1
    assert failed(doc) == {"test_api_key_enforced"}
    text = message(doc, "test_api_key_enforced")
    assert "POST /invocations (200)" in text and "POST /tokenize (200)" in text and "/v1/" not in text
    assert "check the proxy's configuration" in text


def test_on_loopback_vllms_own_key_passes_and_the_open_paths_are_reported(scenario) -> None:
    code, doc, out = scenario("key_on_loopback")
    assert code == 0, out
    assert outcomes(doc)["test_api_key_enforced"] == "passed"
    assert "POST /invocations (200)" in doc["junit"] and "open_without_key" in doc["junit"]


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

def _fleet_host(port: int, *more_ports: int, key: str | None = None) -> dict[str, Any]:
    """A blackwell host served by the stand-in at `port` (and more instances at `more_ports`)."""
    ports = (port, *more_ports)
    host = {"ansible_host": "127.0.0.1", "vllm_fleet_profile": "blackwell",
            "vllm_fleet_overrides": {"serving": {"max_model_len": MAX_LEN}},
            "vllm_fleet_instances": [{"name": "main" if i == 0 else f"i{i}", "gpus": [i], "port": p}
                                     for i, p in enumerate(ports)]}
    if key:
        host["vllm_fleet_api_key"] = key
    return host


def write_inventory(path: Path, port: int, dead: int) -> Path:
    """Group blackwell: bw-01 and bw-02 (the stand-in) and bastion (no profile); group rack1:
    bw-01 and h-01, whose two instances listen nowhere."""
    inventory = {"all": {"children": {
        "blackwell": {"hosts": {"bw-01": _fleet_host(port), "bw-02": _fleet_host(port),
                                "bastion": {"ansible_host": "127.0.0.1"}}},
        "hopper": {"hosts": {"h-01": _fleet_host(dead, dead)}},
        "rack1": {"hosts": {"bw-01": None, "h-01": None}},
    }}}
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def run_cli(tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    code = f"import sys; from vllm_fleet.cli import main; sys.exit(main({list(argv)!r}))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    """An inventory whose blackwell hosts (on loopback, no key) are served by one stand-in."""
    if not STANDIN.exists():
        pytest.skip(f"the vLLM stand-in is not at {STANDIN}")
    base = tmp_path_factory.mktemp("fleet")
    with standin(base) as url:
        yield write_inventory(base / "hosts.yml", int(url.rsplit(":", 1)[1]), free_port())


def test_a_group_checks_every_fleet_host_of_it(fleet: Path, tmp_path: Path) -> None:
    out, junit = tmp_path / "smoke.json", tmp_path / "smoke.xml"
    code, stdout, stderr = run_cli(tmp_path, "smoke", "-i", str(fleet), "-l", "blackwell", "--json", str(out),
                                   "--junit", str(junit))
    assert code == 0, stdout + stderr
    assert "skipped bastion: no vllm_fleet_profile" in stdout
    assert stdout.index("== bw-01/main ==") < stdout.index("== bw-02/main ==")
    assert stdout.rstrip().endswith("2 of 2 instances passed (1 host(s) skipped: bastion)")
    doc = json.loads(out.read_text())
    assert (doc["passed"], doc["instances_passed"], doc["instances_total"]) == (True, 2, 2)
    assert doc["skipped_hosts"] == [{"host": "bastion", "reason": "no vllm_fleet_profile, so not a fleet host"}]
    assert [(t["host"], t["instance"], t["passed"]) for t in doc["targets"]] == [("bw-01", "main", True),
                                                                                 ("bw-02", "main", True)]
    for t in doc["targets"]:
        assert {n for n, o in outcomes(t).items() if o == "passed"} == API_CHECKS - {"test_api_key_enforced"}
        # The host-side checks were not asked for: the reason names this command's flag.
        for check in HOST_CHECKS:
            assert message(t, check).startswith("host-side checks were not asked for: add --host-checks"), t
    xml = ET.parse(junit).getroot()
    assert [s.get("name") for s in xml.iter("testsuite")] == ["bw-01/main", "bw-02/main"]
    assert xml.get("tests") == str(2 * len(API_CHECKS | HOST_CHECKS))
    assert "test_health[bw-02/main]" in {c.get("name") for c in xml.iter("testcase")}


def test_an_intersection_with_a_failing_host(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    code, stdout, stderr = run_cli(tmp_path, "smoke", "-i", str(fleet), "-l", "rack1:!bastion", "--json", str(out))
    assert code == 1, stdout + stderr
    assert "3 instance(s) to check, one after another: bw-01/main, h-01/main, h-01/i1" in stdout
    assert "not passed: h-01/main, h-01/i1" in stdout
    assert stdout.rstrip().endswith("1 of 3 instances passed")
    doc = json.loads(out.read_text())
    assert [(t["host"], t["instance"], t["passed"]) for t in doc["targets"]] == [
        ("bw-01", "main", True), ("h-01", "main", False), ("h-01", "i1", False)]
    assert "cannot reach" in message(doc["targets"][1], "test_health")
    # --instance picks one instance of each host; hosts without it are skipped with a note.
    code, stdout, _ = run_cli(tmp_path, "smoke", "-i", str(fleet), "-l", "bw-01:h-01", "--instance", "i1")
    assert code == 1 and "skipped bw-01: no instance 'i1' (its instances: main)" in stdout
    assert stdout.rstrip().endswith("0 of 1 instances passed (1 host(s) skipped: bw-01)")


def test_inventory_selection_error_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = write_inventory(tmp_path / "hosts.yml", free_port(), free_port())
    cases = {("-l", "sprak"): "host pattern 'sprak' matches no host or group of the inventory; did you mean",
             ("-l", "blackwell:&hopper"): "the limit 'blackwell:&hopper' selects no host",
             ("-l", "bastion"): "selects 1 host(s) but no instance to check (bastion: no vllm_fleet_profile",
             ("-l", "blackwell", "--instance", "other"): "no instance 'other'",
             ("-l", "blackwell", "--url", "http://127.0.0.1:1"): "--url overrides one instance's URL",
             (): "choose the hosts with -l PATTERN"}
    for argv, says in cases.items():
        assert cli.main(["smoke", "-i", str(inventory), *argv]) == runner.EXIT_USAGE, argv
        err = capsys.readouterr().err
        assert says in err and "internal error" not in err, (argv, err)
    assert cli.main(["smoke", "--url", "http://127.0.0.1:1", "-l", "spark"]) == runner.EXIT_USAGE
    assert "give -i INVENTORY too" in capsys.readouterr().err


def test_a_host_whose_profile_does_not_resolve_is_reported_not_crashed(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"bad-01": {"vllm_fleet_profile": "no-such-profile"}}}}))
    out = tmp_path / "smoke.json"
    code, stdout, stderr = run_cli(tmp_path, "smoke", "-i", str(inventory), "-l", "all", "--json", str(out))
    assert code == runner.EXIT_USAGE, stdout + stderr
    assert "NOT CHECKED: host 'bad-01':" in stdout and "internal error" not in stderr
    assert "0 of 1 instances passed" in stdout
    assert json.loads(out.read_text())["targets"][0]["error"].startswith("host 'bad-01':")


def test_inventory_host_gives_url_and_expectations(tmp_path: Path) -> None:
    host_vars = {"ansible_host": "10.0.0.7", "vllm_fleet_profile": "spark", "vllm_fleet_api_key": "k3y",
                 "vllm_fleet_overrides": {"serving": {"max_model_len": 32768}},
                 "vllm_fleet_instances": [{"name": "main", "gpus": [0], "port": 8001}]}
    inventory = tmp_path / "inv.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"spark": {"hosts": {"spark1": host_vars}}}}}))
    t = target.target_from_inventory([str(inventory)], "spark1", None, host_checks=True)
    assert (t.url, t.model, t.max_model_len, t.vllm_version) == ("http://10.0.0.7:8001", MODEL, 32768, "0.28.0")
    assert t.expect_tools and t.expect_spec_decode
    assert Path(t.api_key_file).read_text() == "k3y" and t.api_key_file in t.temp_files
    assert (t.host, t.unit, t.container) == (f"ansible://spark1?ansible_inventory={inventory.resolve()}",
                                            "vllm@main.service", "vllm-main")
    assert "--max-model-len" in json.loads(Path(t.expected_args_file).read_text())
    with pytest.raises(runner.SmokeError, match="no instance 'other'"):
        target.target_from_inventory([str(inventory)], "spark1", "other", host_checks=False)
    # The group selects the same host, with the same target.
    selection = target.select_inventory_targets([str(inventory)], "spark", None, host_checks=False)
    assert [(it.host, it.instance, it.target.url) for it in selection.targets] == [("spark1", "main", t.url)]
    assert selection.targets[0].target.host_hint == target.INVENTORY_HOST_HINT
    for path in t.temp_files + selection.temp_files():
        Path(path).unlink()


def test_manifest_mode_names_host_checks_too(tmp_path: Path) -> None:
    manifest = tmp_path / "main.json"
    manifest.write_text(json.dumps({"url": "http://127.0.0.1:8000", "model": {"served_name": MODEL},
                                    "max_model_len": MAX_LEN, "expect": {}}))
    t = target.target_from_manifest(str(manifest), host_checks=False)
    assert t.host is None and t.host_hint == target.MANIFEST_HOST_HINT
    args = runner.pytest_args(t, None, Path("suite"))
    assert args[args.index("--host-checks-hint") + 1] == target.MANIFEST_HOST_HINT
    plain = runner.pytest_args(runner.Target(url="http://x:1", model=None, max_model_len=None), None, Path("suite"))
    assert "--host-checks-hint" not in plain  # --url mode: the suite's own reason, naming --host


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
