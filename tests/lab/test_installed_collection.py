"""The installed collection, as a user runs it: the wheel and the collection built from this
checkout and installed outside it (tests/installed.py), `ansible-playbook vllm_fleet.fleet.site`
run from a directory outside the checkout with no ansible.cfg, on a lab host the session's
converge (made from the checkout) already serves. The stages validate, preflight and vllm run
and change nothing: the installed collection renders exactly what the checkout rendered."""

from __future__ import annotations

import pytest

from tests.installed import Installed

pytestmark = pytest.mark.lab

H100 = "vllm-fleet-lab-1"


def test_installed_site_playbook_converges_a_lab_host(first_converge, fresh_lab, installed: Installed) -> None:
    proc = installed.run(installed.bin("ansible-playbook"), "-i", fresh_lab.paths.inventory, "vllm_fleet.fleet.site",
                         "-l", H100, "--tags", "preflight,vllm", timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    recap = next(line for line in proc.stdout.splitlines() if line.startswith(H100) and "ok=" in line)
    assert " changed=0 " in recap and " failed=0 " in recap, recap
    # The stages really ran, from the installed collection's files.
    assert "vllm_fleet.fleet.preflight : Stop if this host cannot serve its profile" in out
    assert "vllm_fleet.fleet.vllm : Enable and start the instances" in out
    assert "Check the hosts against vllm-fleet's schema and serving rules" in out
