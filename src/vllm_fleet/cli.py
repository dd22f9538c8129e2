"""The `vllm-fleet` command line: lint, smoke and bench, each registered by its own package."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from vllm_fleet import __version__

COMMANDS = ("lint", "smoke", "bench")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vllm-fleet",
                                     description="Deploy and validate a vLLM fleet serving Qwen3.6-35B-A3B-NVFP4.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from vllm_fleet.lint.cli import register as register_lint

    register_lint(sub)
    # smoke and bench pull in httpx and pytest; a CI lint of 10,000 hosts should not pay for
    # them, so only the command being run (or all, for --help) is registered.
    if command in (None, "smoke"):
        from vllm_fleet.smoke.cli import register as register_smoke

        register_smoke(sub)
    if command in (None, "bench"):
        from vllm_fleet.bench.cli import register as register_bench

        register_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command == "lint" and not args.paths and not args.from_json:
        parser.error("lint needs at least one inventory PATH or --from-json FILE")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `vllm-fleet lint ... | head`
        sys.stderr.close()
        return 0
    except Exception as exc:  # never a traceback for a user; the message still says what broke
        print(f"vllm-fleet: internal error ({type(exc).__name__}: {exc}); please report it with the command you ran",
              file=sys.stderr)
        return 2
