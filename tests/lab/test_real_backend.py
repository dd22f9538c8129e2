"""The lab host that serves REAL vLLM (the CPU build, scripted tiny Qwen3 model), deployed by the
same site.yml, role, unit and `docker run` as the stand-in hosts, with its group's profile minus
what a CPU cannot do (lab/real-vllm/cpu-profile.yml). These are lab figures on CPU, not GPU."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import yaml

from tests.lab.lab_hosts import H1
from tests.lab.site_run import REPO, failed_messages, failures
from vllm_fleet.serving.profiles import resolve_serving
from vllm_fleet.serving.args import serve_args

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def real(first_converge, fresh_lab) -> dict:
    r, _ = first_converge
    assert r.rc == 0 and failures(r) == {}, failed_messages(r)
    record = fresh_lab.record.get("real_vllm")
    assert record, "`lab up` made no real-vLLM host"
    host_vars = yaml.safe_load((fresh_lab.paths.inventory / "host_vars" / f"{record['host']}.yml").read_text())
    return {**record, "name": record["host"], "vars": host_vars, "host": fresh_lab.host(record["host"]),
            "standin": fresh_lab.host(H1)}


def _options(host) -> list[str]:
    """The `docker run` options of the instance's .args file (everything before the image
    reference), its --publish held to the instance's manifest and then left out: a host behind
    the proxy publishes on another port than one that is not."""
    lines = host.file("/etc/vllm-fleet/main.args").content_string.splitlines()
    options = lines[:next(i for i, line in enumerate(lines) if "@sha256:" in line)]
    backend = urlsplit(json.loads(host.file("/etc/vllm-fleet/main.json").content_string)["backend_url"])
    at = options.index("--publish")
    assert options[at + 1].rsplit(":", 1)[0] == f"{backend.hostname}:{backend.port}", (options[at + 1], backend)
    return options[:at] + options[at + 2:]


def test_the_same_role_runs_real_vllm_with_the_derived_profile(real) -> None:
    host, overrides = real["host"], real["vars"]["vllm_fleet_overrides"]
    inspect = json.loads(host.check_output("docker inspect vllm-main"))[0]
    assert inspect["Config"]["Image"] == real["image"]
    config = resolve_serving("hopper", overrides)
    assert inspect["Config"]["Cmd"] == serve_args(config)
    # Same unit, same wrapper, same docker options as a stand-in host of the group.
    assert _options(host) == _options(real["standin"])
    for path in ("/etc/systemd/system/vllm@.service", "/usr/local/libexec/vllm-fleet/vllm-run"):
        assert host.file(path).content_string == real["standin"].file(path).content_string
    version = json.loads(host.check_output("curl -sf http://127.0.0.1:8000/version"))
    assert version["version"] == "0.32.0"  # vLLM itself, not the stand-in (which says 0.28.0)
    # Every option the CPU profile took out is listed with its reason.
    changes = real["vars"]["lab_real_vllm_changes"]
    assert changes and all(": " in line and len(line.split(": ", 1)[1]) > 20 for line in changes)
    cmd = inspect["Config"]["Cmd"]
    assert cmd[cmd.index("--kv-cache-dtype") + 1] == "auto" and "--enforce-eager" in cmd
    assert cmd[cmd.index("--max-model-len") + 1] == "4096"  # the tiny model's, not the profile's


def test_weights_came_through_the_hub_and_serve_offline(real) -> None:
    host = real["host"]
    model = real["vars"]["vllm_fleet_overrides"]["model"]["id"]
    cache = "/var/lib/vllm-fleet/hf-cache"
    marker = f"{cache}/.vllm-fleet/{model.replace('/', '--')}@main.complete"
    assert host.file(marker).exists
    assert host.file(f"{cache}/hub/models--{model.replace('/', '--')}").is_directory
    assert "HF_HUB_OFFLINE=1" in host.file("/etc/vllm-fleet/main.env").content_string


def test_real_vllm_answers_with_parsed_reasoning(real) -> None:
    host = real["host"]
    model = real["vars"]["vllm_fleet_overrides"]["model"]["id"]
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "What is 2+2?"}], "max_tokens": 64})
    reply = json.loads(host.check_output(
        f"curl -sf -H 'Content-Type: application/json' -d '{body}' http://127.0.0.1:8000/v1/chat/completions"))
    message = reply["choices"][0]["message"]
    assert message["reasoning"] == "The user asks."
    assert "<think>" not in message["content"] and "</think>" not in message["content"]


def test_on_host_smoke_suite_passed_against_real_vllm(real) -> None:
    results = json.loads((REPO / "artifacts" / real["name"] / "main.json").read_text())
    assert results["passed"] and results["counts"]["failed"] == 0, results
    outcomes = {c["check"]: c["outcome"] for c in results["checks"]}
    for check in ("test_real_completion", "test_reasoning_parsed", "test_reasoning_parsed_streaming",
                  "test_over_limit_prompt", "test_long_prompt", "test_models"):
        assert outcomes.get(check) == "passed", outcomes
