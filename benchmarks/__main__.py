"""`make bench`: every figure is measured in this one run, on this machine.

None of these numbers come from a GPU: where a server is involved it is the lab's vLLM
stand-in, a test double, and the figures are labelled so.
"""

from __future__ import annotations

import sys

PARTS = ("lint", "converge", "availability", "control")


def main() -> int:
    # `python -m benchmarks control availability` runs those parts only (each takes the lab for a
    # while); no argument: all of them. --no-lab: lint only.
    asked = [a for a in sys.argv[1:] if not a.startswith("-")]
    unknown = sorted(set(asked) - set(PARTS))
    if unknown:
        print(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(PARTS)}", file=sys.stderr)
        return 2
    parts = ("lint",) if "--no-lab" in sys.argv else tuple(asked) or PARTS
    if "lint" in parts:
        _lint()
    if "converge" in parts:
        _converge()
    if "availability" in parts:
        _availability()
    if "control" in parts:
        _control()
    return 0


def _lint() -> None:
    from benchmarks import bench_lint

    r = bench_lint.measure(hosts=10000)
    print(f"lint: {r['hosts']} generated hosts, this machine, one run")
    print(f"  vllm-fleet lint           {r['vllm_fleet_lint_s']:8.3f} s  (exit {r['lint_exit_code']})")
    print(f"  ansible-inventory --list  {r['ansible_inventory_list_s']:8.3f} s")
    print(f"  ratio lint / ansible-inventory = {r['lint_over_ansible_inventory']:.3f}  (target <= 0.100)")


def _converge() -> None:
    from benchmarks import bench_converge

    c = bench_converge.measure()
    print(f"site.yml on the lab ({c['hosts']} container hosts on this machine; lab figures, not GPU hosts)")
    print(f"  first converge: 1 host {c['first_1_s']:6.1f} s, all {c['first_all_s']:6.1f} s, "
          f"ratio all/1 = {c['first_all_over_1']:.2f}  (target <= 1.6)")
    print(f"  re-run:         1 host {c['rerun_1_s']:6.1f} s, all {c['rerun_all_s']:6.1f} s, "
          f"ratio all/1 = {c['rerun_all_over_1']:.2f}  (target <= 1.6)")
    print(f"  re-run of all without ansible.cfg tuning {c['rerun_all_untuned_s']:6.1f} s: "
          f"untuned/tuned = {c['untuned_over_tuned_rerun']:.2f}")


def _availability() -> None:
    from benchmarks import bench_availability
    from benchmarks.availability import router_target_zero

    print("rolling upgrade of all lab hosts under client load (vLLM stand-in, a test double: "
          "lab figures, not GPU figures)")
    for a in bench_availability.measure():
        hosts = ", ".join(f"{h} {v['served']}/{v['failed']}" for h, v in sorted(a["per_host"].items()))
        print(f"  batch size {a['serial']}: {a['seconds']:5.1f} s, {a['requests']} requests; served/failed per host: {hosts}")
        print(f"    most hosts down at once {a['max_down']} (target <= {a['serial']}); "
              f"failed requests outside the host's batch {a['outside_batch']} (target 0)")
        if a["router"]:
            target = ("target 0" if router_target_zero(a["serial"], a["router_servers"])
                      else f"expected: a batch of {a['serial']} drains all {a['router_servers']} routed servers at once")
            print(f"    through the router (hosts 1 and 2 behind one address, each drained before its restart): "
                  f"{a['router']['served']} served, {a['router']['failed']} failed ({target})")


def _control() -> None:
    from benchmarks import bench_control

    m = bench_control.measure()
    print(f"the control machine per host: site.yml re-runs (changed=0) on lab hosts ({m['cores']} CPUs here, "
          f"shared with the hosts: upper bounds)")
    for r in m["runs"]:
        print(f"  {r['hosts']} host(s): {r['wall_s']:6.1f} s, controller {r['cpu_s']:6.1f} CPU-s, "
              f"peak {r['memory_mib']:6.0f} MiB, ssh processes {r['ssh']}")
    for label, r in m["variants"].items():
        if "failed" in r:
            print(f"  5 hosts, {label:18}: failed: {r['failed']}")
            continue
        print(f"  5 hosts, {label:18}: {r['wall_s']:6.1f} s, {r['cpu_s']:6.1f} CPU-s, {r['memory_mib']:6.0f} MiB, ssh {r['ssh']}")
    cpu, mem = m["cpu"], m["memory"]
    print(f"  fitted: CPU-s = {cpu.intercept:.1f} + {cpu.slope:.2f} x hosts; memory MiB = {mem.intercept:.0f} + "
          f"{mem.slope:.0f} x min(forks, hosts)")
    for slices, p in m["plans"].items():
        print(f"  1,000 hosts, forks {m['forks']}, {slices} slice(s): per node {p.hosts} hosts, {p.cpu_s:8.0f} CPU-s "
              f"(>= {p.wall_s_min / 60:5.1f} min on {m['cores']} CPUs), {p.memory_mib:5.0f} MiB, "
              f"up to {p.ssh_masters} ssh masters")


if __name__ == "__main__":
    sys.exit(main())
