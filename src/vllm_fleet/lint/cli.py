"""The `vllm-fleet lint` sub-command."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

DESCRIPTION = """\
Check an Ansible inventory's fleet hosts against the schema and the serving rules, every
problem at once as FILE:LINE: SEVERITY RULE host=H var=V: message.

Fleet hosts: a host is a fleet host when it has vllm_fleet_profile (site.yml targets exactly
those). Other hosts (a bastion, a Kubernetes control plane) are left out even when group_vars/all
gives them fleet-wide defaults; --show-info says how many. A host that gets vllm_fleet_*
variables from anywhere but group all - its host_vars, another group - without a profile is
an error (VF002): set its profile or remove them.

Sources: files and directories as `ansible-inventory -i` reads them (YAML, INI, group_vars/,
host_vars/). Inventory scripts and plugin configurations (a .yml whose `plugin:` names an
inventory plugin) are read by running `ansible-inventory -i SOURCE --list --export`, which must
be installed. --from-json reads such output yourself made.

Values lint cannot know - Jinja templates ("{{ ... }}"), !vault values, vars files encrypted
with ansible-vault - are notes (VF003), not errors: the checks that need them are skipped, and
a secret from a template or the vault counts as set. lint cannot see which variables an
encrypted file sets; it treats vllm_fleet_api_key as possibly set there.

Exit 0 clean, 1 violations, 2 unreadable input or usage."""


def _read_json(name: str) -> Any:
    from vllm_fleet.inventory import InventoryError

    stream = sys.stdin if name == "-" else open(name, encoding="utf-8")
    with stream:
        try:
            return json.load(stream)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InventoryError(f"{name} is not the JSON of `ansible-inventory --list`: {exc}") from None
        except RecursionError:
            raise InventoryError(f"{name} is nested too deeply to be an inventory; check what wrote it.") from None


def cmd_lint(args: argparse.Namespace) -> int:
    from vllm_fleet.inventory import InventoryError, load_inventory, load_inventory_json
    from vllm_fleet.lint import output
    from vllm_fleet.lint.run import lint_inventory
    from vllm_fleet.rules import ERROR, schema

    start = time.perf_counter()
    paths = list(args.paths or [])
    if args.from_json and paths:
        print(f"vllm-fleet: --from-json reads one `ansible-inventory --list` output and no inventory path, but "
              f"{', '.join(paths)} was given too; drop the path(s), or drop --from-json and lint the path(s).",
              file=sys.stderr)
        return output.EXIT_UNREADABLE
    problems = schema.validate_catalogue()
    if problems:
        for var, msg in problems:
            print(f"vllm-fleet: the profile catalogue is invalid at {var}: {msg}", file=sys.stderr)
        return output.EXIT_UNREADABLE
    try:
        if args.from_json:
            label = "<stdin>" if args.from_json == "-" else args.from_json
            inventory = load_inventory_json(_read_json(args.from_json), label)
        else:
            inventory = load_inventory(paths)
    except InventoryError as exc:
        print(f"vllm-fleet: {exc}", file=sys.stderr)
        return output.EXIT_UNREADABLE
    except OSError as exc:
        print(f"vllm-fleet: cannot read {exc.filename}: {exc.strerror}; check the path.", file=sys.stderr)
        return output.EXIT_UNREADABLE
    found, checked = lint_inventory(inventory)
    if checked == 0 and not any(f.violation.severity == ERROR for f in found):
        where = ", ".join(inventory.sources)
        encrypted = (f"; {', '.join(inventory.encrypted_sources)} is encrypted with ansible-vault and cannot be read"
                     if inventory.encrypted_sources else "")
        print(f"vllm-fleet: {where}: no fleet hosts found: none of its {len(inventory.hosts)} host(s) has a "
              f"vllm_fleet_profile{encrypted}; check the inventory path, or set vllm_fleet_profile in the "
              "group_vars of the groups that serve", file=sys.stderr)
        return output.EXIT_UNREADABLE
    shown = output.visible(found, args.show_info or args.format == "json")
    print(output.FORMATTERS[args.format](shown, checked, time.perf_counter() - start))
    if len(shown) < len(found) and args.format == "text":
        print(f"{len(found) - len(shown)} note(s) not shown; --show-info prints them")
    return output.exit_code(found, args.strict)


class _AddPaths(argparse.Action):
    """Positional PATHs and -i/--inventory both add to `paths`, in command-line order."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        given = [values] if isinstance(values, str) else list(values or [])
        setattr(namespace, self.dest, list(getattr(namespace, self.dest, None) or []) + given)


def register(sub: Any) -> None:
    p = sub.add_parser("lint", help="check inventories against the schema and the serving rules",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH", action=_AddPaths, default=[],
                   help="inventory files or directories (like -i)")
    p.add_argument("-i", "--inventory", dest="paths", metavar="PATH", action=_AddPaths,
                   help="an inventory file or directory, as for ansible-playbook (repeatable)")
    p.add_argument("--from-json", metavar="FILE", help="read `ansible-inventory --list` output (- for stdin)")
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p.add_argument("--show-info", action="store_true", help="also print notes (severity info)")
    p.set_defaults(func=cmd_lint)
