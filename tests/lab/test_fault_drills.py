"""Fault drills on the lab's converged hosts, each asserting what a user would see afterwards.
The vLLM servers are the stand-in (a test double); the faults are real: a killed container, a
dead engine under a live API server (hosts 1 and 2, whose watchdogs probe every few seconds:
the hopper stream), a host whose ssh goes away mid-run, an ansible-playbook killed
mid-converge, a full disk under the weight cache (the Spark and the fallback host).

Every drill leaves its host as the converge made it, so the other lab tests see no difference."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from typing import Any

import pytest

from tests.lab.lab_hosts import FALLBACK, H1, H2, SPARK
from tests.lab.drills import BACKEND_HEALTH_CODE, completes, kill_after_changed, lab_overrides, serves, snapshot
from tests.lab.site_run import failed_messages, failures
from vllm_fleet_lab.playbook import run_playbook

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def converged(first_converge, fresh_lab):
    r, _ = first_converge
    assert r.rc == 0 and failures(r) == {}, failed_messages(r)
    return fresh_lab


def _wait(what: str, check, seconds: float, host=None) -> float:
    """Seconds until check() held; fails the test with the instance's status otherwise."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(1)
    status = host.run("systemctl status --no-pager vllm@main; journalctl --no-pager -n 30 -u 'vllm-watchdog@*'").stdout if host else ""
    pytest.fail(f"{what}: not within {seconds:.0f} s\n{status[-2500:]}")


def _container_id(host) -> str:
    out = host.run("docker inspect --format '{{.Id}}' vllm-main")
    return out.stdout.strip() if out.rc == 0 else ""


def _label(host) -> str:
    return host.check_output("docker inspect --format '{{ index .Config.Labels \"io.vllm-fleet.files\" }}' vllm-main")


def _fingerprint(host) -> str:
    return host.check_output("/usr/local/libexec/vllm-fleet/vllm-run --fingerprint /etc/vllm-fleet/main.args")


def _watchdog_setting(host, name: str) -> int:
    service = host.file("/etc/systemd/system/vllm-watchdog@.service").content_string
    return int(service.split(f"--{name} ")[1].split()[0])


@pytest.mark.hopper
def test_killed_container_comes_back(converged) -> None:
    """`docker kill vllm-main`: systemd (Restart=on-failure) starts a new container that is
    healthy within RestartSec plus the load time."""
    host = converged.host(H2)
    restart_sec = int(host.check_output("systemctl show -p RestartUSec --value vllm@main").rstrip("s") or 30)
    before = snapshot(host)
    host.check_output("docker kill vllm-main")
    took = _wait("vllm-main back and serving after docker kill",
                 lambda: _container_id(host) not in ("", before["id"]) and completes(host), restart_sec + 90, host)
    assert took >= restart_sec - 2, f"back after {took:.0f} s, before RestartSec={restart_sec}"
    after = snapshot(host)
    assert after["image"] == before["image"] and after["args"] == before["args"]
    assert host.service("vllm@main").is_running
    print(f"killed container serving again after {took:.0f} s (RestartSec {restart_sec} s)")


@pytest.mark.hopper
@pytest.mark.parametrize(("signal_name", "health"), [("USR1", 503), ("USR2", 200)],
                         ids=["health-503", "health-still-200"])
def test_dead_engine_is_restarted_by_the_watchdog(converged, signal_name, health) -> None:
    """The engine dies, the container lives on: systemd sees nothing wrong. The watchdog judges
    by a real completion, so it restarts the instance whether /health noticed (503) or not
    (200, as real vLLM 0.32 did)."""
    host = converged.host(H2)
    state = "/run/vllm-fleet/watchdog/main.json"
    # Armed: the watchdog saw this start serve (it judges a fresh start only after that).
    _wait("the watchdog armed", lambda: '"served": true' in host.run(f"cat {state}").stdout, 60, host)
    before = _container_id(host)
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    host.check_output(f"docker exec vllm-main kill -{signal_name} 1")
    code = host.check_output(BACKEND_HEALTH_CODE)
    assert code == str(health)
    assert not completes(host), "the engine still completes after it was killed"
    timer = host.file("/etc/systemd/system/vllm-watchdog@.timer").content_string
    interval = int(timer.split("OnUnitActiveSec=")[1].split()[0])
    # The failed probes, each up to two timeouts, then a restart and the load.
    budget = (interval + 2 * _watchdog_setting(host, "timeout")) * _watchdog_setting(host, "failures") + 60
    took = _wait("a new container that completes requests",
                 lambda: _container_id(host) not in ("", before) and completes(host), budget, host)
    journal = host.check_output(f"journalctl --no-pager -u vllm-watchdog@main --since '{since}'")
    assert "restarting vllm@main.service" in journal, journal
    assert host.service("vllm@main").is_running
    print(f"dead engine (/health {health}) replaced by the watchdog after {took:.0f} s")


# One long streamed completion from vLLM itself (the manifest's backend_url, the instance's key),
# in the background on the host; its stream goes to /tmp/drill-long.out.
LONG_REQUEST = r"""m=/etc/vllm-fleet/main.json
read -r url model keyfile <<<"$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["backend_url"], d["model"]["served_name"], d.get("api_key_file") or "/dev/null")' $m)"
key=$(cat "$keyfile" 2>/dev/null || echo none)
body=$(printf '{"model": "%s", "prompt": "long", "max_tokens": %d, "ignore_eos": true, "stream": true}' "$model" TOKENS)
setsid -f sh -c 'echo $$ > /tmp/drill-long.pid; exec curl -sN --max-time 300 -H "Authorization: Bearer $1" -H "Content-Type: application/json" -d "$2" "$3/v1/completions"' \
  sh "$key" "$body" "$url" </dev/null >/tmp/drill-long.out 2>&1"""


@pytest.mark.hopper
def test_a_long_request_on_a_full_server_is_not_restarted(converged) -> None:
    """max_num_seqs=1 and one long streamed request holding that one slot: every watchdog probe
    waits in vLLM's queue past its timeout, for longer than the watchdog used to need to restart
    the instance (and drop the request). vLLM's /metrics show its tokens advancing, so the
    watchdog judges it busy, not failed: the same run of the instance serves the request to its
    end. (The stand-in's per-token delay comes from the instance's .env for the drill.)"""
    host = converged.host(H1)
    files = {path: host.file(path).content_string for path in ("/etc/vllm-fleet/main.args", "/etc/vllm-fleet/main.env")}
    args = files["/etc/vllm-fleet/main.args"].splitlines()
    if "--max-num-seqs" in args:
        args[args.index("--max-num-seqs") + 1] = "1"
    else:
        args += ["--max-num-seqs", "1"]  # the serve arguments end the file
    token_seconds = 0.05
    timer = host.file("/etc/systemd/system/vllm-watchdog@.timer").content_string
    interval = int(timer.split("OnUnitActiveSec=")[1].split()[0])
    failures = _watchdog_setting(host, "failures")
    # Longer than the watchdog used to take to restart a server whose probes all time out.
    hold = (interval + _watchdog_setting(host, "timeout")) * failures + 2 * interval
    state = "/run/vllm-fleet/watchdog/main.json"

    def write(path: str, text: str) -> None:
        host.check_output(f"printf %s {shlex.quote(text)} > {path}")

    try:
        write("/etc/vllm-fleet/main.args", "\n".join(args) + "\n")
        env = files["/etc/vllm-fleet/main.env"].rstrip("\n")
        write("/etc/vllm-fleet/main.env", f"{env}\nVLLM_STANDIN_TOKEN_SECONDS={token_seconds}\n")
        host.check_output("systemctl restart vllm@main")
        _wait("serving with max_num_seqs=1", lambda: completes(host), 60, host)
        invocation = host.check_output("systemctl show -p InvocationID --value vllm@main")

        def armed() -> bool:  # the watchdog saw this run of the instance serve
            out = host.run(f"cat {state}").stdout
            return '"served": true' in out and invocation in out

        _wait("the watchdog armed", armed, 60, host)
        since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
        host.check_output(LONG_REQUEST.replace("TOKENS", str(int((hold + 5) / token_seconds))))
        _wait("the long request streaming", lambda: host.run("grep -q '^data: ' /tmp/drill-long.out").rc == 0, 10, host)
        time.sleep(hold)
        journal = host.check_output(f"journalctl --no-pager -u vllm-watchdog@main --since '{since}'")
        assert journal.count("busy, not failed") >= failures, f"the probes did not wait behind the request:\n{journal}"
        # Not one probe counted as failed, let alone a restart.
        assert f"(1/{failures})" not in journal and "restarting vllm@main.service" not in journal, journal
        _wait("the long request streamed to its end",
              lambda: "data: [DONE]" in host.run("cat /tmp/drill-long.out").stdout, 30, host)
        assert host.check_output("systemctl show -p InvocationID --value vllm@main") == invocation
    finally:
        host.run("kill $(cat /tmp/drill-long.pid) 2>/dev/null; rm -f /tmp/drill-long.out /tmp/drill-long.pid")
        for path, text in files.items():
            write(path, text)
        host.check_output("systemctl restart vllm@main")
        _wait("serving again as converged", lambda: completes(host), 60, host)
    assert _label(host) == _fingerprint(host)
    print(f"{journal.count('busy, not failed')} probes judged busy over {hold} s of max_num_seqs=1; no restart")


def test_unreachable_host_mid_run_the_others_complete(converged, tmp_path) -> None:
    """ssh to the fallback host goes away when the vllm stage starts: the Spark still completes
    every stage (smoke tests included), the fallback host is reported unreachable, by Ansible and
    by the last play."""
    cut: dict[str, float] = {}

    def on_event(event: dict[str, Any]) -> bool:
        data = event.get("event_data", {})
        if not cut and event.get("event") == "playbook_on_play_start" and data.get("play") == "Serve vLLM instances":
            subprocess.run(["docker", "exec", FALLBACK, "sh", "-c",
                            "systemctl stop ssh.socket ssh.service; pkill -KILL -x sshd"], check=False)
            cut["at"] = time.monotonic()
        return True

    try:
        # The stages before the cut (validate, preflight) and after it (vllm, smoke, the report);
        # cuda and docker, already converged, would only add time.
        r = run_playbook("site.yml", converged.paths.inventory, tmp_path / "run", limit=f"{SPARK}:{FALLBACK}",
                         cmdline="--skip-tags cuda,docker", event_handler=on_event)
    finally:
        subprocess.run(["docker", "exec", FALLBACK, "systemctl", "start", "ssh.service"], check=True)
    assert cut, "the run never reached the vllm stage"
    assert r.rc != 0
    stats = r.stats or {}
    assert set(stats.get("dark", {})) == {FALLBACK}, stats
    assert not stats.get("failures"), failed_messages(r)
    smoked = {e["event_data"]["host"] for e in r.events if e.get("event") == "runner_on_ok"
              and e["event_data"].get("play") == "Smoke-test the vLLM instances"}
    assert smoked == {SPARK}
    report = [e["event_data"]["res"]["msg"] for e in r.events if e.get("event") == "runner_on_ok"
              and e["event_data"].get("task") == "Name the hosts that did not complete"]
    assert report and f"1 of 2 hosts did not complete: {FALLBACK}" in report[0], report
    assert serves(converged.host(SPARK))
    # The fallback host was left as it was (the vllm stage never reached it) and serves on.
    assert serves(converged.host(FALLBACK))


def test_playbook_killed_mid_converge_rerun_converges(converged, tmp_path) -> None:
    """ansible-playbook is SIGKILLed right after it wrote a changed .args file, before its
    restart handler: the container still runs the old flags. The re-run restarts it anyway (the
    container's label, a fingerprint of the files it started from, no longer matches the files)."""
    host = converged.host(SPARK)
    inventory = converged.paths.inventory
    overrides = lab_overrides(inventory)
    changed = json.loads(json.dumps(overrides))
    changed.setdefault("serving", {})["max_num_seqs"] = 7
    before = snapshot(host)
    run_dir = tmp_path / "killed"
    killed: dict[str, float] = {}

    try:
        r = run_playbook("playbooks/vllm.yml", inventory, run_dir, limit=SPARK, extravars={"vllm_fleet_overrides": changed},
                         event_handler=kill_after_changed(SPARK, "Write the instance arguments", run_dir, killed))
        assert killed, "the run was not killed"
        assert r.rc != 0 and r.status == "failed", (r.rc, r.status)
        half = snapshot(host)
        assert "--max-num-seqs\n7\n" in half["args"], "the kill came before the new .args file"
        assert half["id"] == before["id"] and "7" not in half["cmd"], "the restart ran before the kill"
        assert _label(host) != _fingerprint(host), "the container should still run the older files"

        again = run_playbook("playbooks/vllm.yml", inventory, tmp_path / "rerun", limit=SPARK,
                             extravars={"vllm_fleet_overrides": changed})
        assert again.rc == 0, failed_messages(again)
        after = snapshot(host)
        assert after["id"] != before["id"]
        assert after["cmd"][after["cmd"].index("--max-num-seqs") + 1] == "7"
        assert completes(host)
        assert _label(host) == _fingerprint(host)

    finally:
        back = run_playbook("playbooks/vllm.yml", inventory, tmp_path / "back", limit=SPARK)
        assert back.rc == 0, failed_messages(back)
    assert snapshot(host)["args"] == before["args"]


def test_disk_full_during_weight_prefetch(converged, tmp_path) -> None:
    """The weight cache's disk is full: the prefetch fails with a sentence that says so, nothing
    is marked complete, and nothing after the prefetch ran: the instance serves on unchanged."""
    host = converged.host(SPARK)
    cache = "/var/lib/vllm-fleet/hf-cache-drill"
    before = snapshot(host)
    # A tiny filesystem, filled to the last block before the run (preflight checks the disk
    # of /var/lib/vllm-fleet, which has room: this disk fills up on its own).
    host.check_output(f"mkdir -p {cache} && mount -t tmpfs -o size=256k tmpfs {cache}"
                      f" && mkdir -p {cache}/.vllm-fleet && (dd if=/dev/zero of={cache}/filler bs=4k 2>/dev/null || true)")
    try:
        r = run_playbook("playbooks/vllm.yml", converged.paths.inventory, tmp_path / "full", limit=SPARK,
                         extravars={"vllm_hf_cache_dir": cache})
        assert r.rc != 0 and set(failures(r)) == {SPARK}
        failed = [e["event_data"] for e in r.events if e.get("event") == "runner_on_failed"]
        assert [f["task"] for f in failed] == ["Report a failed download"], failed_messages(r)
        message = failed[0]["res"]["msg"]
        assert f"The disk of {cache} is full" in message and "not marked complete" in message, message
        assert "no space left on device" in message.lower(), message
        assert host.check_output(f"find {cache} -name '*.complete'") == ""
        after = snapshot(host)
        assert after == before, "something after the failed prefetch changed the instance"
        assert completes(host)
    finally:
        host.run(f"umount {cache}; rmdir {cache}")
