"""playbooks/upgrade.yml and playbooks/rollback.yml on the lab's hopper group (hosts 1 and 2, the
hopper stream's), and the two drills of one host alone on the Spark (host 3, the lab stream's,
which has the hopper stream's other drills to run beside: tests/workers.py).

The first converge's smoke stage marked each host's release verified; that release, and only
that, is what a failed upgrade puts back and what a rollback goes back to. The drills:
- (Spark) a release whose image the registry does not have fails before anything changed:
  nothing is restarted;
- (Spark) two upgrades of one host at once: the second stops at the host's lock, naming the first;
- an upgrade to a broken release (the stand-in with VLLM_STANDIN_FAULT=engine_dead baked in:
  /health says 200, generation fails) killed right after it wrote the new files, then re-run: the
  re-run takes the dead run's lock over, fails smoke on host 1 and puts back the verified
  release, not the files the killed run left; host 2 is never touched;
- a release that never becomes healthy (health_503) fails in the restart handler's health wait
  and is rolled back;
- a good release (the same stand-in with another label, so another digest) goes through host 1,
  then host 2; host 1's previous image is then pruned: a rollback with the registry out of reach
  stops before it stops anything, and with the registry back pulls the image by digest and puts
  the converged release back on both hosts.
Every rollback is proven by a one-token completion, not /health. Each drill leaves the hosts as
the converge made them (the same verified release, no lock held)."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from tests.lab.lab_hosts import H1, H2, SPARK, STANDIN_HOPPER
from tests.lab.drills import completes, kill_after_changed, lab_overrides, lock_held, release, serves, snapshot
from tests.lab.router_client import ClientLoop, edge_of, router_servers, wait_router_up
from tests.lab.site_run import failed_messages, failures
from vllm_fleet_lab.playbook import run_playbook
from vllm_fleet_lab.variants import build_variant

pytestmark = pytest.mark.lab

HOPPER = (H1, H2)
FAST_HEALTH = {"vllm_fleet_upgrade_health_retries": 30, "vllm_fleet_upgrade_health_delay": 2}
# What a rollback puts back: everything the container starts from, and the weight cache.
RELEASE_KEYS = ("image", "args", "env", "unit", "wrapper", "entrypoint", "secrets", "markers", "cache")


def run_play(playbook: str, inventory: Path, tmp: Path, *, limit: str,
             extravars: dict[str, Any] | None = None) -> ansible_runner.Runner:
    return run_playbook(f"playbooks/{playbook}", inventory, tmp, limit=limit, extravars=extravars)


def _with_digest(overrides: dict[str, Any], digest: str) -> dict[str, Any]:
    new = json.loads(json.dumps(overrides))
    new["image"]["digest"] = digest
    return new


def _text(r: ansible_runner.Runner) -> str:
    return " ".join(failed_messages(r))


def _oks(r: ansible_runner.Runner, task: str) -> list[dict[str, Any]]:
    return [e["event_data"] for e in r.events
            if e.get("event") == "runner_on_ok" and e["event_data"].get("task") == task]


def _drained(r: ansible_runner.Runner) -> list[tuple[str, str]]:
    """(host, server) in the order the run drained them on the router."""
    return [(e["event_data"]["host"], e["event_data"]["res"]["item"]["server"]) for e in r.events
            if e.get("event") == "runner_item_on_ok" and e["event_data"].get("task") == "Set the servers to drain"]


def _same_release(after: dict[str, Any], before: dict[str, Any]) -> None:
    for key in RELEASE_KEYS:
        assert after[key] == before[key], f"{key} differs from the converged release"


def _converged(first_converge, lab, names: tuple[str, ...]) -> dict[str, Any]:
    r, _ = first_converge
    assert r.rc == 0 and failures(r) == {}, failed_messages(r)
    overrides = lab_overrides(lab.paths.inventory)
    old = overrides["image"]["digest"]
    for name in names:
        marker = release(lab.host(name))
        assert marker and marker["image"]["ref"].endswith(old), f"the smoke stage did not mark {name} verified"
        assert not lock_held(lab.host(name))
    return {"overrides": overrides, "old": old}


@pytest.fixture(scope="module")
def hopper_converged(first_converge, fresh_lab) -> dict[str, Any]:
    return _converged(first_converge, fresh_lab, HOPPER)


@pytest.fixture(scope="module")
def spark_converged(first_converge, fresh_lab) -> dict[str, Any]:
    return _converged(first_converge, fresh_lab, (SPARK,))


def test_failure_before_any_change_restarts_nothing(spark_converged, fresh_lab, tmp_path) -> None:
    """The registry has no such image: the pull fails before the run changed anything, and the
    rescue, seeing the host still serve its verified release, leaves the instance running."""
    host = fresh_lab.host(SPARK)
    before, verified = snapshot(host), release(host)
    r = run_play("upgrade.yml", fresh_lab.paths.inventory, tmp_path / "upgrade", limit=SPARK,
                 extravars={"vllm_fleet_overrides": _with_digest(spark_converged["overrides"], "sha256:" + "0" * 64),
                            **FAST_HEALTH})
    assert r.rc != 0 and set(failures(r)) == {SPARK}, failed_messages(r)
    text = _text(r)
    assert f"Upgrade of {SPARK} failed at Pull the image" in text, text
    assert "nothing was restored or restarted" in text, text
    assert snapshot(host) == before, "the healthy instance was touched (same container, files and secrets expected)"
    assert release(host) == verified and not lock_held(host)
    assert completes(host)


def test_overlapping_runs_the_second_stops_at_the_lock(spark_converged, fresh_lab, tmp_path) -> None:
    """Two upgrades of one host at once. The first (to the release the host already serves) is
    paused once it holds the host's lock; the second stops there, before it changed anything,
    naming the first run; the first then goes on, restarts nothing, and gives the lock back."""
    host = fresh_lab.host(SPARK)
    inventory = fresh_lab.paths.inventory
    before = snapshot(host)
    first_dir = tmp_path / "first"
    pattern = f"ansible-playbook.*{first_dir}"
    paused = threading.Event()
    outcome: dict[str, ansible_runner.Runner] = {}

    def on_event(event: dict[str, Any]) -> bool:
        data = event.get("event_data", {})
        if (not paused.is_set() and event.get("event") == "runner_on_ok" and data.get("host") == SPARK
                and data.get("task") == "Take the upgrade lock"):
            subprocess.run(["pkill", "-STOP", "-f", pattern], check=False)
            paused.set()
        return True

    first = threading.Thread(target=lambda: outcome.setdefault(
        "first", run_playbook("playbooks/upgrade.yml", inventory, first_dir, limit=SPARK, extravars=FAST_HEALTH,
                              event_handler=on_event)))
    first.start()
    try:
        assert paused.wait(300), "the first run never took the lock"
        assert lock_held(host)
        second = run_play("upgrade.yml", inventory, tmp_path / "second", limit=SPARK, extravars=FAST_HEALTH)
        text = _text(second)
        assert second.rc != 0 and set(failures(second)) == {SPARK}, text
        assert f"{SPARK} is being changed by another run" in text and "is held by upgrade.yml run by" in text, text
        holder = re.search(r"ansible-playbook pid (\d+)", text)
        assert holder, text
        assert str(first_dir).encode() in Path(f"/proc/{holder.group(1)}/cmdline").read_bytes(), \
            "the holder named is not the first run"
        assert snapshot(host) == before
    finally:
        subprocess.run(["pkill", "-CONT", "-f", pattern], check=False)
        first.join(600)
    r = outcome["first"]
    assert r.rc == 0 and failures(r) == {}, failed_messages(r)
    assert snapshot(host) == before, "an upgrade to the release the host serves restarted or changed it"
    assert not lock_held(host)


@pytest.mark.hopper
def test_interrupted_upgrade_rerun_puts_back_the_verified_release(hopper_converged, fresh_lab, tmp_path) -> None:
    started = time.monotonic()
    broken = build_variant(fresh_lab.record, "engine-dead", ["ENV VLLM_STANDIN_FAULT=engine_dead"])
    assert broken != hopper_converged["old"]
    inventory = fresh_lab.paths.inventory
    h1, h2 = fresh_lab.host(H1), fresh_lab.host(H2)
    before = {H1: snapshot(h1), H2: snapshot(h2)}
    verified = release(h1)
    assert before[H1]["markers"], "no HF cache marker on host 1 before the upgrade"
    extravars = {"vllm_fleet_overrides": _with_digest(hopper_converged["overrides"], broken), **FAST_HEALTH}

    # Killed (every process of the run) right after the new files, before the restart handler.
    killed_dir = tmp_path / "killed"
    killed: dict[str, float] = {}

    r = run_playbook("playbooks/upgrade.yml", inventory, killed_dir, limit=STANDIN_HOPPER, extravars=extravars,
                     event_handler=kill_after_changed(H1, "Write the instance arguments", killed_dir, killed))
    assert killed and r.rc != 0, "the run was not killed"
    half = snapshot(h1)
    assert broken in half["args"] and half["id"] == before[H1]["id"], "the kill came before the new files or after the restart"
    assert lock_held(h1), "the killed run's lock should be left behind"

    again = run_play("upgrade.yml", inventory, tmp_path / "rerun", limit=STANDIN_HOPPER, extravars=extravars)
    assert again.rc != 0
    assert set(failures(again)) == {H1}, failures(again)
    notes = [d["res"].get("msg", "") for d in _oks(again, "Take over a lock its run left behind")]
    assert notes and "is gone from this controller" in notes[0], notes
    text = _text(again)
    assert f"Upgrade of {H1} failed at" in text, text
    assert "smoke checks failed" in text or "healthy" in text or "model" in text, text
    assert "Rolled back to the verified release" in text and "restarted: main" in text, text
    # Host 2 is in the validation play (every host is grouped there), never in the upgrade's.
    upgraded = {e["event_data"].get("host") for e in again.events if e.get("event", "").startswith("runner_on_")
                and e["event_data"].get("play") == "Upgrade vLLM instances batch by batch"}
    assert upgraded == {H1}, f"hosts of the upgrade play: {upgraded}"

    # The verified release came back: not the broken files the killed run left on disk.
    after1 = snapshot(h1)
    _same_release(after1, before[H1])
    assert after1["image"].endswith(hopper_converged["old"])
    assert after1["id"] not in (before[H1]["id"], half["id"]), "host 1's container was never restarted"
    assert completes(h1)
    assert release(h1) == verified and not lock_held(h1)
    assert snapshot(h2) == before[H2], "host 2 changed"

    smoke = run_play("smoke.yml", inventory, tmp_path / "smoke", limit=H1)
    assert smoke.rc == 0 and failures(smoke) == {}, failed_messages(smoke)
    assert release(h1) == verified, "a re-smoke of the verified release marked it anew"
    print(f"killed upgrade, re-run, rollback and re-smoke: {time.monotonic() - started:.0f} s")


@pytest.mark.hopper
def test_release_that_never_becomes_healthy_is_rolled_back(hopper_converged, fresh_lab, tmp_path) -> None:
    """/health never answers 200: the restart handler's health wait fails, and the rescue puts
    the verified release back."""
    never = build_variant(fresh_lab.record, "health-503", ["ENV VLLM_STANDIN_FAULT=health_503"])
    host = fresh_lab.host(H1)
    before, verified = snapshot(host), release(host)
    r = run_play("upgrade.yml", fresh_lab.paths.inventory, tmp_path / "upgrade", limit=H1,
                 extravars={"vllm_fleet_overrides": _with_digest(hopper_converged["overrides"], never),
                            "vllm_fleet_upgrade_health_retries": 10, "vllm_fleet_upgrade_health_delay": 2})
    assert r.rc != 0 and set(failures(r)) == {H1}, failed_messages(r)
    text = _text(r)
    # health.yml's wait, which only the restart handler runs in an upgrade.
    assert f"Upgrade of {H1} failed at Wait for vllm instances to report healthy" in text, text
    assert "Rolled back to the verified release" in text and "restarted: main" in text, text
    after = snapshot(host)
    _same_release(after, before)
    assert after["id"] != before["id"]
    assert completes(host)
    assert release(host) == verified and not lock_held(host)


@pytest.mark.hopper
def test_good_release_goes_host_by_host_then_rollback_restores(hopper_converged, fresh_lab, tmp_path) -> None:
    started = time.monotonic()
    good = build_variant(fresh_lab.record, "relabel", ['LABEL io.vllm-fleet.release="next"'])
    assert good != hopper_converged["old"]
    inventory = fresh_lab.paths.inventory
    hosts = {n: fresh_lab.host(n) for n in HOPPER}
    before = {n: snapshot(h) for n, h in hosts.items()}
    verified = {n: release(h) for n, h in hosts.items()}

    # Both hosts are behind the lab's router: the upgrade drains each there before it restarts
    # it, so a client of the router loses nothing while the other serves.
    wait_router_up(fresh_lab)
    with ClientLoop(edge_of(fresh_lab, tmp_path)) as client:
        r = run_play("upgrade.yml", inventory, tmp_path / "upgrade", limit=STANDIN_HOPPER,
                     extravars={"vllm_fleet_overrides": _with_digest(hopper_converged["overrides"], good),
                                **FAST_HEALTH})
    assert r.rc == 0 and failures(r) == {}, failed_messages(r)
    print(f"rolling upgrade: {len(client.failed)} of {client.sent} requests through the router failed")
    assert client.sent > 20 and client.failed == [], client.failed
    assert _drained(r) == [(H1, f"{H1}_main"), (H2, f"{H2}_main")], _drained(r)
    # Back in rotation and healthy. HAProxy keeps checking a drained server, so a check that
    # fell while it restarted shows as "UP 2/3" until the next one passes (router_check_interval_sec
    # later); a server left drained or failing never reads plain UP again.
    assert wait_router_up(fresh_lab, 30) == {f"{H1}_main": "UP", f"{H2}_main": "UP"}
    after = {n: snapshot(h) for n, h in hosts.items()}
    for n, h in hosts.items():
        assert after[n]["image"].endswith(good), after[n]["image"]
        assert (after[n]["markers"], after[n]["cache"]) == (before[n]["markers"], before[n]["cache"])
        # What passed smoke is the verified release now; the one it replaced is kept as previous.
        assert release(h)["image"]["ref"].endswith(good)
        assert release(h, "previous") == verified[n]
    # Serial 1: host 2's batch starts after host 1 finished (smoke included).
    order = [d["host"] for d in _oks(r, "Take the upgrade lock")]
    assert order == [H1, H2], order
    assert after[H1]["started"] < after[H2]["started"]

    # Host 1's previous image is pruned, and its registry is out of reach: the rollback stops
    # before it stops anything.
    h1 = hosts[H1]
    old_ref = before[H1]["image"]
    # Refused at once, a connection the daemon kept from the last pull included.
    block = f"OUTPUT -p tcp --dport {old_ref.split('/')[0].rpartition(':')[2]} -j REJECT --reject-with tcp-reset"
    h1.check_output(f"docker image rm -f $(docker image inspect --format '{{{{.Id}}}}' {old_ref})")
    assert h1.run(f"docker image inspect {old_ref}").rc != 0
    h1.check_output(f"iptables -I {block}")
    try:
        cut = run_play("rollback.yml", inventory, tmp_path / "cut", limit=H1, extravars=FAST_HEALTH)
    finally:
        h1.check_output(f"iptables -D {block}")
    text = _text(cut)
    assert cut.rc != 0 and set(failures(cut)) == {H1}, text
    assert f"is not on {H1} any more" in text and "could not be pulled again by its digest" in text, text
    assert "Nothing was stopped or changed" in text, text
    assert "It restarted nothing and is back in the routers' rotation" in text, text
    assert snapshot(h1) == after[H1], "host 1 changed although the image to roll back to was missing"
    assert completes(h1) and not lock_held(h1)
    assert router_servers(fresh_lab) == {f"{H1}_main": "UP", f"{H2}_main": "UP"}

    # With the registry back, the image is pulled by digest and both hosts roll back, each
    # drained on the router first: its clients lose nothing.
    with ClientLoop(edge_of(fresh_lab, tmp_path)) as client:
        back = run_play("rollback.yml", inventory, tmp_path / "rollback", limit=STANDIN_HOPPER, extravars=FAST_HEALTH)
    assert back.rc == 0 and failures(back) == {}, failed_messages(back)
    print(f"rollback: {len(client.failed)} of {client.sent} requests through the router failed")
    assert client.sent > 20 and client.failed == [], client.failed
    assert _drained(back) == [(H1, f"{H1}_main"), (H2, f"{H2}_main")], _drained(back)
    assert wait_router_up(fresh_lab, 30) == {f"{H1}_main": "UP", f"{H2}_main": "UP"}  # as after the upgrade
    assert h1.run(f"docker image inspect {old_ref}").rc == 0
    for n, h in hosts.items():
        restored = snapshot(h)
        _same_release(restored, before[n])
        assert serves(h) and completes(h)
        # The release rolled back to is the verified one again; nothing older is kept.
        assert release(h) == verified[n] and release(h, "previous") is None
        assert not lock_held(h)
    print(f"good upgrade of 2 hosts, rollback without and with the image: {time.monotonic() - started:.0f} s")
