"""The `vllm-fleet lint` sub-command."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def cmd_lint(args: argparse.Namespace) -> int:
    from vllm_fleet.inventory import InventoryError, load_inventory, load_inventory_json
    from vllm_fleet.lint import output
    from vllm_fleet.lint.run import lint_inventory
    from vllm_fleet.rules import schema

    start = time.perf_counter()
    problems = schema.validate_catalogue()
    if problems:
        for var, msg in problems:
            print(f"vllm-fleet: the profile catalogue is invalid at {var}: {msg}", file=sys.stderr)
        return output.EXIT_UNREADABLE
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
        return output.EXIT_UNREADABLE
    except OSError as exc:
        print(f"vllm-fleet: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return output.EXIT_UNREADABLE
    found, checked = lint_inventory(inventory)
    if checked == 0:
        print("vllm-fleet: no fleet hosts found (no host has a vllm_fleet_profile); check the inventory path",
              file=sys.stderr)
        return output.EXIT_UNREADABLE
    shown = output.visible(found, args.show_info or args.format == "json")
    print(output.FORMATTERS[args.format](shown, checked, time.perf_counter() - start))
    if len(shown) < len(found) and args.format == "text":
        print(f"{len(found) - len(shown)} note(s) not shown; --show-info prints them")
    return output.exit_code(found, args.strict)


def register(sub: Any) -> None:
    p = sub.add_parser("lint", help="check inventories against the schema and the serving rules",
                       description="Exit 0 clean, 1 violations, 2 unreadable input or usage.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="inventory files or directories (like -i)")
    p.add_argument("--from-json", metavar="FILE", help="read `ansible-inventory --list` output (- for stdin)")
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p.add_argument("--show-info", action="store_true", help="also print notes (severity info)")
    p.set_defaults(func=cmd_lint)
