"""playbooks/upgrade.yml and playbooks/rollback.yml on the lab's hopper group (hosts 1 and 2 only).

A broken release (the stand-in with VLLM_STANDIN_FAULT=engine_dead baked in: /health says 200,
generation fails) stops at host 1: it is rolled back and serves the old digest again, host 2 is
never touched. A good release (the same stand-in with another label, so another digest) goes
through host 1, then host 2; rollback.yml then puts the converged version back."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from tests.lab.drills import H1, H2, STANDIN_HOPPER, lab_overrides, serves, snapshot
from tests.lab.site_run import failed_messages, failures
from vllm_fleet_lab.playbook import run_playbook
from vllm_fleet_lab.variants import build_variant

pytestmark = pytest.mark.lab

HOPPER = (H1, H2)
FAST_HEALTH = {"vllm_fleet_upgrade_health_retries": 30, "vllm_fleet_upgrade_health_delay": 2}


def run_play(playbook: str, inventory: Path, tmp: Path, *, limit: str,
             extravars: dict[str, Any] | None = None) -> ansible_runner.Runner:
    return run_playbook(f"playbooks/{playbook}", inventory, tmp, limit=limit, extravars=extravars)


def _with_digest(overrides: dict[str, Any], digest: str) -> dict[str, Any]:
    new = json.loads(json.dumps(overrides))
    new["image"]["digest"] = digest
    return new


@pytest.fixture(scope="module")
def hopper_converged(first_converge, fresh_lab) -> dict[str, Any]:
    r, _ = first_converge
    assert r.rc == 0 and failures(r) == {}, failed_messages(r)
    overrides = lab_overrides(fresh_lab.paths.inventory)
    return {"overrides": overrides, "old": overrides["image"]["digest"]}


def test_broken_release_stops_at_host_1_and_rolls_it_back(hopper_converged, fresh_lab, tmp_path) -> None:
    started = time.monotonic()
    broken = build_variant(fresh_lab.record, "engine-dead", ["ENV VLLM_STANDIN_FAULT=engine_dead"])
    assert broken != hopper_converged["old"]
    h1, h2 = fresh_lab.host(H1), fresh_lab.host(H2)
    before = {H1: snapshot(h1), H2: snapshot(h2)}
    assert before[H1]["markers"], "no HF cache marker on host 1 before the upgrade"

    r = run_play("upgrade.yml", fresh_lab.paths.inventory, tmp_path / "upgrade", limit=STANDIN_HOPPER,
                 extravars={"vllm_fleet_overrides": _with_digest(hopper_converged["overrides"], broken),
                            **FAST_HEALTH})
    assert r.rc != 0, "the upgrade to a broken release succeeded"
    assert set(failures(r)) == {H1}, failures(r)
    text = " ".join(failed_messages(r))
    assert f"Upgrade of {H1} failed at" in text, text
    assert "smoke checks failed" in text or "healthy" in text or "model" in text, text
    assert "Rolled back to the previous deployment" in text, text
    touched = set().union(*(set(v) for v in (r.stats or {}).values()))
    assert H2 not in touched, f"host 2 was part of the run: {r.stats}"

    after1 = snapshot(h1)
    assert after1["image"] == before[H1]["image"] and after1["image"].endswith(hopper_converged["old"])
    assert after1["args"] == before[H1]["args"] and after1["unit"] == before[H1]["unit"]
    assert after1["id"] != before[H1]["id"], "host 1's container was never restarted"
    assert serves(h1)
    assert (after1["markers"], after1["cache"]) == (before[H1]["markers"], before[H1]["cache"])
    assert snapshot(h2) == before[H2], "host 2 changed"

    smoke = run_play("smoke.yml", fresh_lab.paths.inventory, tmp_path / "smoke", limit=H1)
    assert smoke.rc == 0 and failures(smoke) == {}, failed_messages(smoke)
    print(f"broken upgrade, rollback and re-smoke: {time.monotonic() - started:.0f} s")


def test_good_release_goes_host_by_host_then_rollback_restores(hopper_converged, fresh_lab, tmp_path) -> None:
    started = time.monotonic()
    good = build_variant(fresh_lab.record, "relabel", ['LABEL io.vllm-fleet.release="next"'])
    assert good != hopper_converged["old"]
    hosts = {n: fresh_lab.host(n) for n in HOPPER}
    before = {n: snapshot(h) for n, h in hosts.items()}

    r = run_play("upgrade.yml", fresh_lab.paths.inventory, tmp_path / "upgrade", limit=STANDIN_HOPPER,
                 extravars={"vllm_fleet_overrides": _with_digest(hopper_converged["overrides"], good),
                            **FAST_HEALTH})
    assert r.rc == 0 and failures(r) == {}, failed_messages(r)
    after = {n: snapshot(h) for n, h in hosts.items()}
    for n in HOPPER:
        assert after[n]["image"].endswith(good), after[n]["image"]
        assert (after[n]["markers"], after[n]["cache"]) == (before[n]["markers"], before[n]["cache"])
    # Serial 1: host 2's batch starts after host 1 finished (smoke included).
    order = [e["event_data"]["host"] for e in r.events
             if e.get("event") == "runner_on_ok" and e["event_data"].get("task") == "Keep the current files as previous"]
    assert order == [H1, H2], order
    assert after[H1]["started"] < after[H2]["started"]

    back = run_play("rollback.yml", fresh_lab.paths.inventory, tmp_path / "rollback", limit=STANDIN_HOPPER, extravars=FAST_HEALTH)
    assert back.rc == 0 and failures(back) == {}, failed_messages(back)
    for n, h in hosts.items():
        restored = snapshot(h)
        assert restored["image"] == before[n]["image"], restored["image"]
        assert (restored["args"], restored["unit"]) == (before[n]["args"], before[n]["unit"])
        assert serves(h)
    print(f"good upgrade of 2 hosts and rollback: {time.monotonic() - started:.0f} s")
