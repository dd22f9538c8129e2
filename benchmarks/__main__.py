"""`make bench`: every figure is measured in this one run, on this machine.

None of these numbers come from a GPU: where a server is involved it is the lab's vLLM
stand-in, a test double, and the figures are labelled so.
"""

from __future__ import annotations

import sys


def main() -> int:
    from benchmarks import bench_lint

    r = bench_lint.measure(hosts=10000)
    print(f"lint: {r['hosts']} generated hosts, this machine, one run")
    print(f"  vllm-fleet lint           {r['vllm_fleet_lint_s']:8.3f} s  (exit {r['lint_exit_code']})")
    print(f"  ansible-inventory --list  {r['ansible_inventory_list_s']:8.3f} s")
    print(f"  ratio lint / ansible-inventory = {r['lint_over_ansible_inventory']:.3f}  (target <= 0.100)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
