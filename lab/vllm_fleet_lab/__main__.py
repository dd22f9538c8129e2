"""`python -m vllm_fleet_lab up|down|status` (the same as the vllm-fleet-lab command)."""

import sys

from vllm_fleet_lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
