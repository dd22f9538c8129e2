"""The control-machine model of `make bench` (benchmarks/control_cost.py) on made-up figures."""

from __future__ import annotations

import pytest

from benchmarks.control_cost import Line, fit, plan


def test_a_line_through_exact_points_is_found() -> None:
    line = fit([1, 2, 5], [30.0, 50.0, 110.0])
    assert line.intercept == pytest.approx(10.0) and line.slope == pytest.approx(20.0)
    assert line.at(1000) == pytest.approx(20010.0)


def test_one_host_count_is_not_enough() -> None:
    with pytest.raises(ValueError, match="two different host counts"):
        fit([5, 5], [1.0, 2.0])


def test_the_plan_is_cpu_bound_on_many_hosts_and_latency_bound_on_few() -> None:
    cpu, memory = Line(10.0, 20.0), Line(100.0, 50.0)
    big = plan(cpu, memory, single_host_wall_s=90, hosts=1000, cores=8, forks=50)
    assert big.cpu_s == pytest.approx(20010.0) and big.wall_s_min == pytest.approx(20010.0 / 8)
    assert big.memory_mib == pytest.approx(100 + 50 * 50) and big.ssh_masters == 1000
    small = plan(cpu, memory, single_host_wall_s=90, hosts=2, cores=8, forks=50)
    assert small.wall_s_min == 90 and small.memory_mib == pytest.approx(200.0)


def test_slicing_divides_the_hosts_and_pays_the_constant_per_slice() -> None:
    cpu, memory = Line(10.0, 20.0), Line(100.0, 50.0)
    sliced = plan(cpu, memory, single_host_wall_s=90, hosts=1000, cores=8, forks=50, slices=4)
    assert sliced.hosts == 250 and sliced.cpu_s == pytest.approx(10 + 20 * 250) and sliced.ssh_masters == 250


def test_a_variant_site_yml_refuses_is_reported_not_fatal(monkeypatch) -> None:
    from pathlib import Path

    from benchmarks import bench_control

    def refused(*_args, **_kwargs):
        raise bench_control.RunFailed("exit 2 [ERROR]: The 'ansible.builtin.add_host' module bypasses the host loop", "")

    monkeypatch.setattr(bench_control, "run", refused)
    assert bench_control._variant(Path("inv"), ["h1"], {"ANSIBLE_STRATEGY": "free"}) == {
        "failed": "exit 2 [ERROR]: The 'ansible.builtin.add_host' module bypasses the host loop"}
