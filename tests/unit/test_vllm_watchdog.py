"""The health watchdog the vllm role installs (roles/vllm/files/vllm-watchdog), run as the timer
runs it: against the instance files the role rendered, a vLLM stand-in (test double) as the
server and a fake `systemctl` that records what the watchdog asks of systemd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.standin_server import standin
from tests.unit.vllm_render import API_KEY, _instances, load_source
from vllm_fleet.serving.profiles import resolve_serving

FAKE_SYSTEMCTL = """#!{python}
import json, sys
state = json.load(open({state!r}))
with open({calls!r}, "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1] == "show":
    print("ActiveState=" + state["active"])
    print("InvocationID=" + state["invocation"])
    print("ActiveEnterTimestampMonotonic=" + str(state["entered_us"]))
"""


@pytest.fixture(scope="module")
def watchdog(rendered) -> ModuleType:
    return load_source(rendered["spark"] / "libexec" / "vllm-watchdog", "vllm_watchdog")


def test_the_rendered_manifest_gives_url_model_and_key(rendered, watchdog):
    for case in ("spark", "nasty-args"):
        etc = rendered[case] / "etc"
        for inst in _instances("spark")[1]:
            manifest = json.loads((etc / f"{inst['name']}.json").read_text())
            # Bound to 0.0.0.0: clients go through the proxy (https, the instance's port); the
            # watchdog probes vLLM itself, on loopback behind it (the port + 10000).
            assert manifest["url"] == f"https://127.0.0.1:{inst['port']}"
            assert manifest["backend_url"] == f"http://127.0.0.1:{inst['port'] + 10000}"
            # extra_args name the model again in nasty-args; vLLM keeps the last one.
            expected = "a b" if case == "nasty-args" else resolve_serving("spark")["model"]["id"]
            assert manifest["model"]["served_name"] == expected
            assert manifest["unit"] == f"vllm@{inst['name']}.service"
            assert watchdog.api_key(manifest["api_key_file"]) == API_KEY


def test_unit_wants_its_watchdog_timer_which_stops_with_it(rendered):
    unit = rendered["spark"] / "unit"
    assert "Wants=vllm-watchdog@%i.timer" in (unit / "vllm@.service").read_text()
    timer = (unit / "vllm-watchdog@.timer").read_text()
    assert "PartOf=vllm@%i.service" in timer
    assert "OnUnitActiveSec=30" in timer
    service = (unit / "vllm-watchdog@.service").read_text()
    assert f"{rendered['spark'] / 'libexec' / 'vllm-watchdog'} {rendered['spark'] / 'etc'}/%i.json" in service
    assert "--failures 3" in service and API_KEY not in service


def test_probe_judges_by_a_completion_not_by_health(watchdog, tmp_path):
    with standin(tmp_path, "spark", extra=("--api-key", "k1")) as url:
        model = resolve_serving("spark")["model"]["id"]
        assert watchdog.probe(url, model, "k1", 5) == ""
        assert watchdog.probe(url, model, "", 5) == "a one-token completion failed with 401"
    with standin(tmp_path, "spark", env={"VLLM_STANDIN_FAULT": "engine_dead"}) as url:
        assert watchdog.probe(url, model, "", 5) == "a one-token completion failed with 500"
    with standin(tmp_path, "spark", env={"VLLM_STANDIN_FAULT": "health_503"}) as url:
        assert watchdog.probe(url, model, "", 5) == "/health answered 503"
    assert watchdog.probe("http://127.0.0.1:9", model, "", 2).startswith("/health unreachable")


class Host:
    """An instance's files pointing at a stand-in, and a fake systemctl with a settable state."""

    def __init__(self, tmp_path: Path, url: str, model: str) -> None:
        self.etc = tmp_path / "etc"
        self.etc.mkdir()
        self.manifest = self.etc / "main.json"
        self.manifest.write_text(json.dumps({"instance": "main", "unit": "vllm@main.service", "backend_url": url,
                                             "model": {"served_name": model}, "api_key_file": None}))
        self.state_dir = tmp_path / "state"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.state = tmp_path / "unit.json"
        self.calls = tmp_path / "calls.jsonl"
        fake = self.bin / "systemctl"
        fake.write_text(FAKE_SYSTEMCTL.format(python=sys.executable, state=str(self.state), calls=str(self.calls)))
        fake.chmod(0o755)
        self.set(active="active", invocation="inv-1", uptime=5)

    def set(self, active: str, invocation: str, uptime: float) -> None:
        entered = int((time.clock_gettime(time.CLOCK_MONOTONIC) - uptime) * 1e6)
        self.state.write_text(json.dumps({"active": active, "invocation": invocation, "entered_us": entered}))

    def run(self, script: Path, *options: str) -> str:
        proc = subprocess.run(
            [sys.executable, str(script), str(self.manifest), "--state-dir",
             str(self.state_dir), "--failures", "2", "--timeout", "3", *options],
            env={**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}"},
            capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    def restarts(self) -> list[list[str]]:
        calls = [json.loads(line) for line in self.calls.read_text().splitlines()] if self.calls.exists() else []
        return [c for c in calls if c[0] == "restart"]


def test_restarts_an_instance_whose_engine_died_after_serving(rendered, tmp_path):
    script = rendered["spark"] / "libexec" / "vllm-watchdog"
    model = resolve_serving("spark")["model"]["id"]
    with standin(tmp_path, "spark") as url:
        host = Host(tmp_path, url, model)
        assert host.run(script) == ""  # serves: armed, nothing to say
        pid = int(subprocess.check_output(["pgrep", "-f", "--", f"--port {url.rsplit(':', 1)[1]}"]).split()[0])
        os.kill(pid, signal.SIGUSR2)  # engine dies, /health stays 200
        time.sleep(0.3)
        first = host.run(script)
        assert "a one-token completion failed with 500 (1/2)" in first
        assert host.restarts() == []
        second = host.run(script)
        assert host.restarts() == [["restart", "--no-block", "vllm@main.service"]]
        assert "restarting vllm@main.service: 2 failed probes in a row after serving" in second


def test_a_fresh_start_is_judged_only_after_serving_or_the_grace(tmp_path):
    script = Path(__file__).resolve().parents[2] / "roles" / "vllm" / "files" / "vllm-watchdog"
    model = resolve_serving("spark")["model"]["id"]
    with standin(tmp_path, "spark", env={"VLLM_STANDIN_FAULT": "engine_dead"}) as url:
        host = Host(tmp_path, url, model)
        for _ in range(3):  # still loading, as far as the watchdog can tell
            host.run(script, "--start-grace", "600")
        assert host.restarts() == []
        host.run(script, "--start-grace", "1")
        log = host.run(script, "--start-grace", "1")
        assert "never served within 1 s" in log
        assert len(host.restarts()) == 1
        # A new invocation (the restart happened) starts the count again.
        host.set(active="active", invocation="inv-2", uptime=5)
        host.run(script, "--start-grace", "1")
        assert len(host.restarts()) == 1


def test_a_stopped_instance_is_left_alone(tmp_path):
    script = Path(__file__).resolve().parents[2] / "roles" / "vllm" / "files" / "vllm-watchdog"
    host = Host(tmp_path, "http://127.0.0.1:9", "m")
    host.set(active="inactive", invocation="", uptime=0)
    for _ in range(3):
        assert host.run(script, "--start-grace", "0") == ""
    assert host.restarts() == []
