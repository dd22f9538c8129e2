"""`python -m vllm_fleet.lab up|down|status` until the main CLI wires in `lab`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["lab", *sys.argv[1:]]))
