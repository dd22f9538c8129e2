"""The `vllm-fleet` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Sequence


def _cmd_lint(args: argparse.Namespace) -> int:
    # Imports stay inside: `vllm-fleet --help` should not pay for jsonschema and YAML.
    from vllm_fleet import lint, schema
    from vllm_fleet.inventory import InventoryError, load_inventory, load_inventory_json

    start = time.perf_counter()
    problems = schema.validate_catalogue()
    if problems:
        for var, msg in problems:
            print(f"vllm-fleet: the profile catalogue is invalid at {var}: {msg}", file=sys.stderr)
        return lint.EXIT_UNREADABLE
    try:
        if args.from_json:
            stream = sys.stdin if args.from_json == "-" else open(args.from_json, encoding="utf-8")
            with stream:
                try:
                    data = json.load(stream)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise InventoryError(f"{args.from_json} is not the JSON of `ansible-inventory --list`: {exc}") from None
            inventory = load_inventory_json(data)
        else:
            inventory = load_inventory(args.paths)
    except InventoryError as exc:
        print(f"vllm-fleet: {exc}", file=sys.stderr)
        return lint.EXIT_UNREADABLE
    except OSError as exc:
        print(f"vllm-fleet: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return lint.EXIT_UNREADABLE
    found, checked = lint.lint_inventory(inventory)
    if checked == 0:
        print("vllm-fleet: no fleet hosts found (no host has vllm_fleet_* variables or sits in a profile-named group); "
              "check the inventory path", file=sys.stderr)
        return lint.EXIT_UNREADABLE
    shown = lint.visible(found, args.show_info or args.format == "json")
    print(lint.FORMATTERS[args.format](shown, checked, time.perf_counter() - start))
    if len(shown) < len(found) and args.format == "text":
        print(f"{len(found) - len(shown)} note(s) not shown; --show-info prints them")
    return lint.exit_code(found, args.strict)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vllm-fleet", description="Deploy and validate a vLLM fleet serving Qwen3.6-35B-A3B-NVFP4.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lint_p = sub.add_parser("lint", help="check inventories against the schema and the serving rules",
                            description="Exit 0 clean, 1 violations, 2 unreadable input or usage.")
    lint_p.add_argument("paths", nargs="*", metavar="PATH", help="inventory files or directories (like -i)")
    lint_p.add_argument("--from-json", metavar="FILE", help="read `ansible-inventory --list` output (- for stdin)")
    lint_p.add_argument("--format", choices=("text", "json", "github"), default="text")
    lint_p.add_argument("--strict", action="store_true", help="warnings fail too")
    lint_p.add_argument("--show-info", action="store_true", help="also print notes (severity info)")
    lint_p.set_defaults(func=_cmd_lint)

    # The other sub-commands pull in httpx, asyncio and the lab; a CI lint of 10,000 hosts should
    # not pay for them, so only the command being run (or all, for --help) is registered.
    if command in (None, "smoke"):
        from vllm_fleet.smoke import register as register_smoke

        register_smoke(sub)
    if command in (None, "bench"):
        from vllm_fleet.bench import register as register_bench

        register_bench(sub)
    if command in (None, "lab"):
        from vllm_fleet.lab.cli import register as register_lab

        register_lab(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in ("lint", "smoke", "bench", "lab") else None
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


if __name__ == "__main__":
    sys.exit(main())
