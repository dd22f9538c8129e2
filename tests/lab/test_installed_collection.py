"""The installed collection, as a user runs it: the wheel and the collection built from this
checkout and installed outside it with the execution environment's requirements
(tests/installed.py), and site.yml run the way AWX runs a job: `ansible-runner run` on a private
data directory (project, inventory), outside the checkout, no ansible.cfg, on a lab host the
session's converge (made from the checkout) already serves. The stages validate, preflight and
vllm run and change nothing: the installed collection renders exactly what the checkout rendered."""

from __future__ import annotations

import shutil

import pytest

from tests.installed import Installed
from tests.lab.lab_hosts import SPARK  # the hopper stream drills hosts 1 and 2 meanwhile (tests/workers.py)
from tests.lab.site_run import FinishedRun

pytestmark = pytest.mark.lab

# A job template's playbook in an AWX project: the collection's, by its full name.
PROJECT_PLAYBOOK = "- name: Deploy the fleet\n  ansible.builtin.import_playbook: vllm_fleet.fleet.site\n"


def test_site_runs_under_ansible_runner_as_awx_runs_a_job(first_converge, fresh_lab, installed: Installed,
                                                         tmp_path) -> None:
    job = tmp_path / "job"
    (job / "project").mkdir(parents=True)
    (job / "project" / "site.yml").write_text(PROJECT_PLAYBOOK)
    shutil.copytree(fresh_lab.paths.inventory, job / "inventory")
    proc = installed.run(installed.bin("ansible-runner"), "run", job, "-p", "site.yml", "--ident", "1",
                         "--limit", SPARK, "--cmdline", "--tags preflight,vllm", timeout=900)
    artifacts = job / "artifacts" / "1"
    out = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert (artifacts / "status").read_text().strip() == "successful", out[-4000:]
    # What AWX shows of a job: its events; the last one carries the play recap.
    run = FinishedRun(proc.returncode, "successful", artifacts)
    events, stats = run.events, run.stats
    assert stats is not None, out[-4000:]
    assert stats["ok"].get(SPARK) and not stats["changed"].get(SPARK) and not stats["failures"], stats
    # The stages really ran, from the installed collection's files.
    data = [e.get("event_data", {}) for e in events]  # some events (verbose lines) carry none
    tasks = {d.get("task") for d in data}
    assert "Stop if this host cannot serve its profile" in tasks
    assert "Enable and start the instances" in tasks
    assert "Check the hosts against vllm-fleet's schema and serving rules" in tasks
    roles = {str(d["role"]).rpartition(".")[2] for d in data if d.get("role")}
    assert {"preflight", "vllm"} <= roles, roles
