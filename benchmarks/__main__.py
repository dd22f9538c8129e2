"""`make bench`: every figure is a ratio measured in this one run, on this machine.

None of these numbers come from a GPU: the lab's vLLM is a stand-in (a test double).
"""

from __future__ import annotations

import sys


def main() -> int:
    from benchmarks import bench_inventory

    result = bench_inventory.measure(hosts=10000)
    print("lint vs ansible-inventory on a generated 10,000-host inventory (this machine, one run)")
    for key, value in result.items():
        print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
