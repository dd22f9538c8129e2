"""The control machine's cost of a site.yml run as a function of the hosts it manages, and what
it comes to at 1,000 hosts. Pure functions: the figures come from bench_control's runs.

The model, stated so it can be checked against the figures it is fitted to:
- CPU-seconds on the controller: c(n) = a + b*n (a: the run's own cost, parsing and templating
  once; b: the cost of each host, its forks, module payloads and results), least squares over
  the hosts measured.
- Wall time at n hosts on k cores, CPU-bound: at least c(n)/k; and no faster than the tasks of
  one host run one after another: t(1), each task waiting for the slowest of a batch of `forks`.
- Peak memory: m(f) = m0 + m1*f for f = min(forks, n) workers alive at once (fitted the same way).
- SSH: one ControlMaster per host, alive for ControlPersist after its last task, so up to n
  masters at once at the end of a run (one process and one connection each).
- AWX job slicing into s slices: s runs of n/s hosts, each on its own execution node: c(n/s)
  CPU-seconds and m(min(forks, n/s)) memory per node, the constant a paid s times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    intercept: float
    slope: float

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x


def fit(xs: Sequence[float], ys: Sequence[float]) -> Line:
    """Least-squares y = a + b*x; two distinct x at least."""
    if len(xs) != len(ys) or len(set(xs)) < 2:
        raise ValueError("a line needs measurements at two different host counts at least")
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return Line(my - slope * mx, slope)


@dataclass(frozen=True)
class Plan:
    hosts: int
    cpu_s: float
    wall_s_min: float
    memory_mib: float
    ssh_masters: int


def plan(cpu: Line, memory: Line, single_host_wall_s: float, hosts: int, cores: int, forks: int,
         slices: int = 1) -> Plan:
    """The controller's cost at `hosts` hosts (per execution node when sliced)."""
    per_node = -(-hosts // slices)
    cpu_s = cpu.at(per_node)
    return Plan(hosts=per_node, cpu_s=cpu_s, wall_s_min=max(cpu_s / cores, single_host_wall_s),
                memory_mib=memory.at(min(forks, per_node)), ssh_masters=per_node)
