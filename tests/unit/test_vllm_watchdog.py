"""The health watchdog the vllm role installs (roles/vllm/files/vllm-watchdog), run as the timer
runs it: against the instance files the role rendered, a vLLM stand-in (test double) as the
server and a fake `systemctl` (and `systemd-cat`) that records what the watchdog asks of systemd.
Also its alert (--alert, vllm-alert@.service) and the units the role renders for both."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.standin_server import standin
from tests.unit.vllm_render import API_KEY, _instances, load_source
from vllm_fleet.serving.profiles import resolve_serving

SOURCE = Path(__file__).resolve().parents[2] / "roles" / "vllm" / "files" / "vllm-watchdog"

FAKE_SYSTEMCTL = """#!{python}
import json, sys
state = json.load(open({state!r}))
with open({calls!r}, "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1] == "show":
    print("ActiveState=" + state["active"])
    print("InvocationID=" + state["invocation"])
    print("ActiveEnterTimestampMonotonic=" + str(state["entered_us"]))
    print("Result=" + state.get("result", "success"))
    print("NRestarts=" + str(state.get("nrestarts", 0)))
"""

# systemd-cat: its options and the line it would have written to the journal.
FAKE_SYSTEMD_CAT = """#!{python}
import json, sys
with open({calls!r}, "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "stdin": sys.stdin.read()}}) + "\\n")
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
        self.journal = tmp_path / "systemd-cat.jsonl"
        cat = self.bin / "systemd-cat"
        cat.write_text(FAKE_SYSTEMD_CAT.format(python=sys.executable, calls=str(self.journal)))
        cat.chmod(0o755)
        self.set(active="active", invocation="inv-1", uptime=5)

    def set(self, active: str, invocation: str, uptime: float, **more) -> None:
        entered = int((time.clock_gettime(time.CLOCK_MONOTONIC) - uptime) * 1e6)
        self.state.write_text(json.dumps({"active": active, "invocation": invocation, "entered_us": entered, **more}))

    def run(self, script: Path, *options: str, env: dict[str, str] | None = None, rc: int = 0) -> str:
        proc = subprocess.run(
            [sys.executable, str(script), str(self.manifest), "--state-dir",
             str(self.state_dir), "--failures", "2", "--timeout", "3", *options],
            env={**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}", **(env or {})},
            capture_output=True, text=True, timeout=60)
        assert proc.returncode == rc, proc.stderr
        return proc.stderr

    def calls_of(self, verb: str) -> list[list[str]]:
        calls = [json.loads(line) for line in self.calls.read_text().splitlines()] if self.calls.exists() else []
        return [c for c in calls if c[0] == verb]

    def restarts(self) -> list[list[str]]:
        return self.calls_of("restart")

    def alerts(self) -> list[list[str]]:
        return self.calls_of("start")

    def journal_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.journal.read_text().splitlines()] if self.journal.exists() else []

    def age_restarts(self, seconds: float) -> None:
        """As if the watchdog's restarts had happened `seconds` earlier."""
        path = self.state_dir / "main.restarts.json"
        data = json.loads(path.read_text())
        path.write_text(json.dumps({**data, "restarts": [t - seconds for t in data["restarts"]]}))


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


# --- a busy server is not a dead one --------------------------------------------------------


def _long_request(url: str, model: str, tokens: int, done: threading.Event) -> None:
    """One streamed completion of `tokens` tokens (ignore_eos: no early stop), read to its end."""
    body = {"model": model, "prompt": "long", "max_tokens": tokens, "ignore_eos": True, "stream": True}
    try:
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=120) as response:
            for line in response.iter_lines():
                if line == "data: [DONE]":
                    done.set()
    except httpx.HTTPError:
        pass


def _gauge(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def test_a_long_request_on_a_full_server_restarts_nothing(tmp_path):
    """max_num_seqs=1, and one long streamed request holds the only slot: each one-token probe
    waits in the queue past its timeout. The tokens vLLM's /metrics count go on growing, so the
    watchdog judges the server busy, not failed: no failure counted, no restart."""
    model = resolve_serving("spark")["model"]["id"]
    with standin(tmp_path, "spark", serving={"max_num_seqs": 1}, env={"VLLM_STANDIN_TOKEN_SECONDS": "0.02"}) as url:
        host = Host(tmp_path, url, model)
        assert host.run(SOURCE) == ""  # serves: armed
        done = threading.Event()
        # 2000 tokens at 0.02 s: 40 s, much longer than the probes below take.
        threading.Thread(target=_long_request, args=(url, model, 2000, done), daemon=True).start()
        deadline = time.monotonic() + 10
        while _gauge(url, "vllm:num_requests_running") < 1:
            assert time.monotonic() < deadline, "the long request never ran"
            time.sleep(0.05)
        logs = [host.run(SOURCE, "--timeout", "2") for _ in range(3)]  # --failures 2: a restart, if they counted
        assert host.restarts() == [], logs
        for log in logs:
            assert "busy, not failed: a one-token completion did not answer within 2 s" in log, log
            assert "tokens generated" in log and "failed probes" not in log, log
        state = json.loads((host.state_dir / "main.json").read_text())
        assert state["failures"] == 0 and state["served"] is True
        assert _gauge(url, "vllm:num_requests_running") == 1 and not done.is_set(), \
            "the long request ended before the probes were done: nothing was proven"


class _Stuck(BaseHTTPRequestHandler):
    """A server whose engine hangs: /health 200, completions never come back in time, and its
    /metrics (when it has them) show requests running but not a token more."""

    metrics = True

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            return self._send(200, b"")
        if self.path == "/metrics" and self.metrics:
            return self._send(200, b'vllm:num_requests_running{model_name="m",engine="0"} 1.0\n'
                                   b'vllm:num_requests_waiting{model_name="m",engine="0"} 2.0\n'
                                   b'vllm:generation_tokens_total{model_name="m",engine="0"} 1234.0\n')
        self._send(404, b"")

    def do_POST(self):
        time.sleep(5)
        self._send(200, b'{"choices": [{"text": "x"}]}')


@contextmanager
def _stuck_server(metrics: bool) -> Iterator[str]:
    handler = type("Handler", (_Stuck,), {"metrics": metrics})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("metrics", [True, False], ids=["counters-still", "no-metrics"])
def test_a_timed_out_probe_counts_when_nothing_progresses(tmp_path, metrics):
    """A hung engine (requests running, no token more) or one whose /metrics cannot say: the
    timed-out probes count, and the instance is restarted."""
    with _stuck_server(metrics) as url:
        host = Host(tmp_path, url, "m")
        host.set(active="active", invocation="inv-1", uptime=5)
        first = host.run(SOURCE, "--timeout", "2", "--start-grace", "0")
        expected = ("the engine did not progress (1 running, 2 waiting requests)" if metrics
                    else "/metrics could not tell whether it is busy")
        assert f"a one-token completion did not answer within 2 s, and {expected} (1/2)" in first, first
        assert host.restarts() == []
        host.run(SOURCE, "--timeout", "2", "--start-grace", "0")
        assert host.restarts() == [["restart", "--no-block", "vllm@main.service"]]


def test_metrics_parse_sums_series_and_reads_labels_with_spaces_and_braces(watchdog_source):
    text = ('# HELP vllm:generation_tokens_total x\n'
            'vllm:generation_tokens_total{model_name="a b} \\"c\\"",engine="0"} 10.0\n'
            'vllm:generation_tokens_total{model_name="a b} \\"c\\"",engine="1"} 5\n'
            'vllm:num_requests_running 2 1700000000\n'
            'vllm:iteration_tokens_total_count{engine="0"} 7\n')
    assert watchdog_source.parse_metrics(text) == {
        "vllm:generation_tokens_total": 15.0, "vllm:num_requests_running": 2.0,
        "vllm:iteration_tokens_total_count": 7.0}
    # A probe's own token and step are not progress; more is; a counter that went back is not.
    before = {"vllm:generation_tokens_total": 10.0, "vllm:iteration_tokens_total_count": 5.0}
    assert watchdog_source.progress(before, {"vllm:generation_tokens_total": 11.0,
                                             "vllm:iteration_tokens_total_count": 6.0}) == ""
    assert watchdog_source.progress(before, {"vllm:generation_tokens_total": 10.0,
                                             "vllm:iteration_tokens_total_count": 9.0}) == "4 engine steps"
    assert watchdog_source.progress(before, {"vllm:generation_tokens_total": 3.0}) == ""


@pytest.fixture(scope="module")
def watchdog_source() -> ModuleType:
    return load_source(SOURCE, "vllm_watchdog_source")


# --- backoff, giving up, the alert -----------------------------------------------------------


def test_restarts_back_off_then_the_watchdog_gives_up_and_raises_the_alert(tmp_path):
    """A dead engine that no restart cures: each restart waits longer than the one before (60,
    120, then at most 200 s), and after --max-restarts the watchdog leaves the instance alone and
    starts vllm-alert@main.service once, with the reason where the alert reads it."""
    model = resolve_serving("spark")["model"]["id"]
    opts = ("--failures", "1", "--start-grace", "0", "--backoff", "60", "--backoff-max", "200",
            "--max-restarts", "4")
    with standin(tmp_path, "spark", env={"VLLM_STANDIN_FAULT": "engine_dead"}) as url:
        host = Host(tmp_path, url, model)
        assert "watchdog restart 1 of 4" in host.run(SOURCE, *opts)
        for n, delay in enumerate((60, 120, 200), start=1):
            host.set(active="active", invocation=f"inv-{n + 1}", uptime=5)  # the restarted instance, dead again
            held = host.run(SOURCE, *opts)
            assert re.search(rf"held off \d+ s more: backoff {delay} s after watchdog restart {n} of 4", held), held
            assert len(host.restarts()) == n
            host.age_restarts(delay - 30)
            assert re.search(r"held off (2\d|30) s more", host.run(SOURCE, *opts))
            assert len(host.restarts()) == n
            host.age_restarts(31)
            assert f"watchdog restart {n + 1} of 4" in host.run(SOURCE, *opts)
            assert len(host.restarts()) == n + 1
        assert host.alerts() == []
        host.set(active="active", invocation="inv-5", uptime=5)
        host.age_restarts(10_000)  # no backoff left: giving up is about the count, not the time
        log = host.run(SOURCE, *opts)
        assert "giving up on vllm@main.service: 4 restarts did not help" in log, log
        assert host.alerts() == [["start", "--no-block", "vllm-alert@main.service"]]
        assert len(host.restarts()) == 4
        reason = json.loads((host.state_dir / "main.alert").read_text())["reason"]
        assert "the watchdog gave up on vllm@main.service" in reason and "failed with 500" in reason
        # Given up on this run of the instance: no restart, no second alert; each probe says so.
        again = host.run(SOURCE, *opts)
        assert "given up, left as it is (alert raised)" in again
        assert len(host.restarts()) == 4 and len(host.alerts()) == 1

        # vllm-alert@main.service: the journal line (identifier, priority, instance, reason), then the hook.
        hook = tmp_path / "hook"
        seen = tmp_path / "hook.json"
        hook.write_text(f"#!/bin/sh\nenv | grep ^VLLM_FLEET_ALERT_ > {seen}\n")
        hook.chmod(0o700)
        # systemd sets MONITOR_* on any start of a unit that an OnFailure= names: here the unit is
        # active, and what the watchdog recorded is the reason.
        monitor = {"MONITOR_UNIT": "vllm@main.service", "MONITOR_SERVICE_RESULT": "success"}
        assert host.run(SOURCE, "--alert", "--hook", str(hook), env=monitor) == ""
        [line] = host.journal_lines()
        assert line["argv"] == ["-t", "vllm-fleet-alert", "-p", "crit"]
        assert line["stdin"].startswith("instance main (vllm@main.service) on ")
        assert reason in line["stdin"] and line["stdin"].count("\n") == 1
        env = dict(pair.split("=", 1) for pair in seen.read_text().splitlines())
        assert env["VLLM_FLEET_ALERT_INSTANCE"] == "main" and env["VLLM_FLEET_ALERT_UNIT"] == "vllm@main.service"
        assert env["VLLM_FLEET_ALERT_REASON"] == reason
        assert not (host.state_dir / "main.alert").exists(), "the recorded reason is used once"


def test_serving_a_while_after_a_restart_starts_the_count_over(tmp_path):
    """Restarts the watchdog made are forgotten once the instance has served --backoff-reset
    seconds after the last one; a given-up instance that serves again is judged again."""
    model = resolve_serving("spark")["model"]["id"]
    with standin(tmp_path, "spark") as url:
        host = Host(tmp_path, url, model)
        host.state_dir.mkdir()
        now = time.clock_gettime(time.CLOCK_MONOTONIC)
        restarts = host.state_dir / "main.restarts.json"
        restarts.write_text(json.dumps({"restarts": [now - 500, now - 100]}))
        (host.state_dir / "main.json").write_text(json.dumps(
            {"invocation": "inv-1", "served": True, "failures": 5, "gave_up": True}))
        assert "serves again" in host.run(SOURCE, "--backoff-reset", "300")
        assert json.loads(restarts.read_text())["restarts"] == [now - 500, now - 100], "served 100 s only"
        state = json.loads((host.state_dir / "main.json").read_text())
        assert (state["failures"], state["gave_up"]) == (0, False)
        host.age_restarts(201)
        assert host.run(SOURCE, "--backoff-reset", "300") == ""
        assert not restarts.exists()


def test_the_alert_of_a_unit_systemd_gave_up_on(tmp_path):
    """OnFailure=: systemd (>= 251) names the failed unit and its result; older ones do not, and
    the alert asks systemd. Either way one line says which instance, what and what to do."""
    host = Host(tmp_path, "http://127.0.0.1:9", "m")
    host.set(active="failed", invocation="", uptime=0, result="start-limit-hit", nrestarts=5)
    host.run(SOURCE, "--alert", env={"MONITOR_UNIT": "vllm@main.service", "MONITOR_SERVICE_RESULT": "start-limit-hit"})
    host.run(SOURCE, "--alert")
    # A reason the watchdog recorded long ago (its alert never ran) is not this alert's.
    host.state_dir.mkdir()
    (host.state_dir / "main.alert").write_text(json.dumps({"reason": "old news", "time": time.time() - 3600}))
    host.run(SOURCE, "--alert")
    for line in host.journal_lines():
        assert line["argv"] == ["-t", "vllm-fleet-alert", "-p", "crit"]
        message = line["stdin"]
        assert message.startswith("instance main (vllm@main.service) on "), message
        assert ("vllm@main.service failed (result start-limit-hit, after 5 automatic restarts) and systemd gave up "
                "restarting it (its StartLimitBurst)") in message, message
        assert "systemctl reset-failed vllm@main.service; systemctl start vllm@main.service" in message
        assert "old news" not in message
    assert len(host.journal_lines()) == 3
    # A hook that fails fails the alert unit (visible in `systemctl --failed`), after the line.
    bad = tmp_path / "bad-hook"
    bad.write_text("#!/bin/sh\nexit 3\n")
    bad.chmod(0o700)
    assert "the alert hook" in host.run(SOURCE, "--alert", "--hook", str(bad), rc=1)
    assert len(host.journal_lines()) == 4
    # No systemd-cat (no journal): the line goes to stderr at priority crit.
    (host.bin / "systemd-cat").unlink()
    out = host.run(SOURCE, "--alert", env={"PATH": f"{host.bin}:/nonexistent"})
    assert out.startswith("<2>vllm-fleet-alert: instance main (vllm@main.service)"), out


def test_no_alert_unit_still_leaves_a_journal_line(tmp_path):
    """The watchdog gives up but cannot start vllm-alert@ (not installed, say): it writes the
    alert line itself."""
    host = Host(tmp_path, "http://127.0.0.1:9", "m")  # nothing listens: /health unreachable
    (host.bin / "systemctl").write_text((host.bin / "systemctl").read_text() + (
        "if sys.argv[1] == 'start':\n    sys.exit('Unit vllm-alert@main.service not found.')\n"))
    opts = ("--failures", "1", "--start-grace", "0", "--max-restarts", "0", "--timeout", "1")
    assert "giving up" in host.run(SOURCE, *opts)
    [line] = host.journal_lines()
    assert line["argv"] == ["-t", "vllm-fleet-alert", "-p", "crit"]
    assert "the watchdog gave up on vllm@main.service" in line["stdin"] and "/health unreachable" in line["stdin"]
    assert host.restarts() == []


# --- the units ------------------------------------------------------------------------------


def _analyze_problems(analyze: str, units: list[Path]) -> list[str]:
    """What `systemd-analyze verify` says about `units`. Its exit code alone is not enough: it
    exits 0 on a setting it ignores (an unknown or misspelt one) and only says so."""
    proc = subprocess.run([analyze, "verify", *map(str, units)], capture_output=True, text=True, timeout=60,
                          check=False)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if any(u.name in line for u in units)]
    return ([f"exit {proc.returncode}"] if proc.returncode else []) + lines


def test_the_watchdog_and_alert_units(rendered, tmp_path):
    """The rendered watchdog, timer, alert and instance units parse without a complaint from
    systemd-analyze (which does complain about a misspelt sandbox setting); the watchdog is
    sandboxed (`systemd-analyze security` rates it OK, 9.6 UNSAFE without its sandbox); the
    instance names the alert as its OnFailure=; the watchdog gets every backoff setting."""
    out = rendered["spark"]
    units = out / "unit"
    service = (units / "vllm-watchdog@.service").read_text()
    for option in ("--backoff 300", "--backoff-max 3600", "--max-restarts 3", "--backoff-reset 3600",
                   "--state-dir %t/vllm-fleet/watchdog", "--timeout 60", "--failures 3"):
        assert option in service
    for setting in ("ProtectSystem=strict", "CapabilityBoundingSet=\n", "NoNewPrivileges=yes",
                    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "RuntimeDirectory=vllm-fleet/watchdog",
                    "RuntimeDirectoryPreserve=yes", "SystemCallFilter=@system-service"):
        assert setting in service
    assert "OnFailure=vllm-alert@%i.service" in (units / "vllm@.service").read_text()
    alert = (units / "vllm-alert@.service").read_text()
    assert f"{out / 'libexec' / 'vllm-watchdog'} {out / 'etc'}/%i.json --alert" in alert
    assert "--hook" not in alert and not (out / "libexec" / "vllm-alert-hook").exists()  # none by default

    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not available")
    here = tmp_path / "units"
    here.mkdir()
    copies = []
    for name in ("vllm-watchdog@.service", "vllm-watchdog@.timer", "vllm-alert@.service", "vllm@.service"):
        text = (units / name).read_text()
        # docker.service is not on this machine; drop the dependency lines for the parse.
        text = "\n".join(line for line in text.splitlines() if "docker.service" not in line) + "\n"
        copies.append(here / name.replace("@.", "@main."))
        copies[-1].write_text(text)
    assert _analyze_problems(analyze, copies) == []
    watchdog_unit = copies[0]
    broken = here / "vllm-watchdog@broken.service"
    broken.write_text(watchdog_unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=strictly"))
    assert any("strictly" in p for p in _analyze_problems(analyze, [broken]))

    def exposure(unit: Path) -> float:
        proc = subprocess.run([analyze, "security", "--offline=true", str(unit)], capture_output=True, text=True,
                              timeout=60, check=False)
        found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout + proc.stderr)
        if not found:
            pytest.skip(f"systemd-analyze security --offline is not supported here: {proc.stderr[-300:]}")
        return float(found.group(1))

    assert exposure(watchdog_unit) <= 2.0
    bare = here / "vllm-watchdog@bare.service"
    bare.write_text(watchdog_unit.read_text().split("# Sandbox.")[0])
    assert exposure(bare) > 9
