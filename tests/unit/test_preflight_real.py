"""Preflight's verdicts on captures from real H200 machines (tests/fixtures/preflight-h200-real):
the facts the module gathered there, judged again here for every declaration that was run there,
give the verdicts the installed collection gave on the machine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from vllm_fleet.rules.preflight import preflight_problems
from vllm_fleet.serving.host import plan_host

REAL = Path(__file__).parents[1] / "fixtures" / "preflight-h200-real"
# What each declaration must give on each machine (and gave there: summary.txt).
EXPECTED = {
    "1x": {"true": set(), "issue-2xh100": {"VF111", "VF112", "VF113", "VF401"}, "wrong-name": {"VF111"},
           "wrong-count": {"VF112", "VF401"}, "wrong-memory": {"VF113"}},
    "2x": {"true": set(), "issue-2xh100": {"VF111", "VF113"}, "wrong-name": {"VF111"},
           "wrong-count": {"VF112"}, "wrong-memory": {"VF113"}},
}


def _facts(machine: str) -> dict:
    text = (REAL / machine / "module-nvidia_gpu_facts.txt").read_text()
    return yaml.safe_load(text.split("=>", 1)[1])["ansible_facts"]["nvidia_gpu_facts"]


@pytest.mark.parametrize("machine,case", [(m, c) for m, cases in EXPECTED.items() for c in cases])
def test_verdicts_on_real_captures(machine: str, case: str) -> None:
    declared = yaml.safe_load((REAL / machine / f"{case}.yml").read_text())["all"]["hosts"]["localhost"]
    problems = preflight_problems(plan_host(declared), _facts(machine), None,
                                  {"name": "localhost", "check_driver_branch": True})
    assert {p.split(":", 1)[0] for p in problems} == EXPECTED[machine][case], problems
    # ... and the machine said the same: exit 0 and no rule for the true declaration, the rules otherwise.
    line = next(x for x in (REAL / machine / "summary.txt").read_text().splitlines() if x.startswith(f"preflight {case}:"))
    assert ("exit 0" in line) == (case == "true")
    on_machine = set(re.findall(r"VF1\d\d", line))
    assert on_machine <= EXPECTED[machine][case] and (on_machine or case == "true")


def test_the_machines_are_what_the_captures_say() -> None:
    for machine, count in (("1x", 1), ("2x", 2)):
        facts = _facts(machine)
        assert facts["count"] == count and facts["driver_branch"] == 580
        assert {g["name"] for g in facts["gpus"]} == {"NVIDIA H200"}
        assert {g["memory_total_mib"] for g in facts["gpus"]} == {143771}
    assert "python3-apt" in (REAL / "2x" / "check-cuda-docker.txt").read_text()
    stops = (REAL / "2x" / "vllm-without-docker.txt").read_text()
    assert "systemd is not PID 1" in stops and "run the docker stage first" in stops
