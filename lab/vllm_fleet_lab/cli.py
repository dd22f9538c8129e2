"""`vllm-fleet-lab up|down|status`: a local lab of GPU-host stand-ins to run the roles against."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from .config import ARM64_HOST_INDEX, REAL_VLLM_HOST_INDEX, LabPaths
from .lab import DEFAULT_HOSTS, down, dumps, format_status, status, up
from .proc import LabError


def _paths(args: argparse.Namespace) -> LabPaths:
    return LabPaths.resolve(args.lab_dir)


def _reporting(action: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Lab errors are for users: print the sentence, exit 1, no traceback."""

    @functools.wraps(action)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return action(args)
        except LabError as exc:
            print(f"vllm-fleet-lab: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            # A file the lab could not read, write or remove: name it, never a traceback.
            where = f" ({exc.filename})" if exc.filename else ""
            print(f"vllm-fleet-lab: {exc.strerror or exc}{where}; fix that path's permissions or mounts and "
                  f"run the command again (it picks up where it stopped)", file=sys.stderr)
            return 1

    return wrapper


@_reporting
def _up(args: argparse.Namespace) -> int:
    record = up(_paths(args), hosts=args.hosts, reset=args.reset, real_vllm_host=args.real_vllm_host,
                router=args.router)
    print(format_status(status(_paths(args))) if not args.json else dumps(record))
    return 0


@_reporting
def _down(args: argparse.Namespace) -> int:
    down(_paths(args))
    return 0


@_reporting
def _status(args: argparse.Namespace) -> int:
    info = status(_paths(args))
    print(dumps(info) if args.json else format_status(info))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vllm-fleet-lab",
        description="A lab of Debian 12 systemd containers standing in for GPU hosts, with apt "
                    "mirrors laid out like NVIDIA's and a registry, for testing vllm-fleet's roles here.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--lab-dir", default=None,
                        help="where the lab keeps its state (default: <repo>/.lab or $VLLM_FLEET_LAB_DIR)")
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    actions = parser.add_subparsers(dest="lab_action", required=True)
    p_up = actions.add_parser("up", parents=[common], help="create or reuse the lab (idempotent)")
    p_up.add_argument("--hosts", type=int, default=DEFAULT_HOSTS, help=f"lab hosts (default {DEFAULT_HOSTS}); host {ARM64_HOST_INDEX} is a Spark that really is "
                           "aarch64 (arm64 under qemu-user: its converge takes several times as long)")
    p_up.add_argument("--real-vllm-host", type=int, default=REAL_VLLM_HOST_INDEX, metavar="N",
                      help=f"host N serves real vLLM (CPU build, scripted tiny model) instead of the "
                           f"stand-in; 0: none (default {REAL_VLLM_HOST_INDEX})")
    p_up.add_argument("--no-router", dest="router", action="store_false",
                      help="leave out the router host (HAProxy in front of hosts 1 and 2)")
    p_up.add_argument("--reset", action="store_true",
                      help="recreate the hosts from scratch (mirror, registry and caches are kept)")
    p_up.set_defaults(func=_up)
    actions.add_parser("down", parents=[common], help="remove everything the lab created, keep caches").set_defaults(func=_down)
    actions.add_parser("status", parents=[common], help="show hosts, addresses and services").set_defaults(func=_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
