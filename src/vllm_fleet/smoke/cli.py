"""The `vllm-fleet smoke` sub-command."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from vllm_fleet.smoke.options import SUITE_OPTIONS
from vllm_fleet.smoke.runner import (EXIT_FAILED, EXIT_OK, EXIT_USAGE, SmokeError, Target, TargetRun, fleet_plan,
                                     fleet_summary, merge_junit, run_suite, summarize)
from vllm_fleet.smoke.target import select_inventory_targets, target_from_manifest

# pytest exit codes that mean the suite itself could not run (internal error, usage error such
# as an unreadable key file), as opposed to checks that ran and failed.
PYTEST_COULD_NOT_RUN = (3, 4)


def _single_target(args: argparse.Namespace) -> Target:
    if args.manifest:
        t = target_from_manifest(args.manifest, args.host_checks)
        t.url = args.url or t.url
        t.api_key_file = args.api_key_file or t.api_key_file
        t.ca_file = args.ca_file or t.ca_file
        t.metrics_url = args.metrics_url or t.metrics_url
        return t
    missing = [f for f, v in (("--url", args.url), ("--model", args.model), ("--max-model-len", args.max_model_len)) if not v]
    if missing:
        raise SmokeError(f"give {', '.join(missing)} (or -i INVENTORY -l HOSTS to take them from the inventory)")
    return Target(url=args.url, model=args.model, max_model_len=args.max_model_len, vllm_version=args.vllm_version,
                  api_key_file=args.api_key_file, ca_file=args.ca_file, metrics_url=args.metrics_url,
                  expect_tools=args.expect_tools, expect_proxy=args.expect_proxy,
                  expect_spec_decode=args.expect_spec_decode, long_prompt_ratio=args.long_prompt_ratio,
                  timeout=args.timeout, host=args.host, unit=args.unit, container=args.container,
                  image_digest=args.image_digest, expected_args_file=args.expected_args_file)


def _check_flags(args: argparse.Namespace) -> None:
    if args.manifest and args.inventory:
        raise SmokeError("give either --manifest or -i INVENTORY, not both")
    if args.inventory and not args.limit:
        raise SmokeError("with -i INVENTORY, choose the hosts with -l PATTERN: a host, a group such as spark, "
                         "a pattern such as 'hopper:&rack1', or all")
    if not args.inventory and (args.limit or args.instance):
        raise SmokeError(f"{'-l' if args.limit else '--instance'} chooses from an inventory; give -i INVENTORY too")
    for flag, path in (("--json", args.json), ("--junit", args.junit)):
        parent = Path(path).parent if path else None
        if parent is not None and not (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)):
            raise SmokeError(f"{flag} {path}: the directory {parent} does not exist or is not writable; "
                             "create it or name another file")


def _run_single(args: argparse.Namespace) -> int:
    target: Target | None = None
    try:
        target = _single_target(args)
        rc, collector, seconds = run_suite(target, args.junit)
    except SmokeError as exc:
        print(f"vllm-fleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        for path in target.temp_files if target else []:
            Path(path).unlink(missing_ok=True)
    if rc in PYTEST_COULD_NOT_RUN:
        print(f"vllm-fleet: the smoke suite could not run (pytest exit code {rc}); see the message above",
              file=sys.stderr)
        return EXIT_USAGE
    doc, text, ok = summarize(target, collector, rc, seconds)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return EXIT_OK if ok else EXIT_FAILED


def _run_inventory(args: argparse.Namespace) -> int:
    """Every selected instance one after another: each one's summary as it finishes, then one
    line for them all. Exit 0 when all passed, 2 when any could not be checked (unusable input
    for it), else 1."""
    try:
        selection = select_inventory_targets(args.inventory, args.limit, args.instance, args.host_checks)
    except SmokeError as exc:
        print(f"vllm-fleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    runs: list[TargetRun] = []
    junit_dir = tempfile.mkdtemp(prefix="vllm-fleet-junit-") if args.junit else None
    try:
        if args.url and len(selection.targets) > 1:
            raise SmokeError(f"--url overrides one instance's URL, but -l {args.limit!r} selects "
                             f"{len(selection.targets)} instances; leave --url out or narrow -l")
        print(fleet_plan([it.label for it in selection.targets], selection.skipped), flush=True)
        for it in selection.targets:
            run = TargetRun(it.host, it.instance, error=it.error)
            runs.append(run)
            print(f"== {it.label} ==", flush=True)
            if it.target is None:
                print(f"NOT CHECKED: {it.error}", flush=True)
                continue
            it.target.url = args.url or it.target.url
            it.target.api_key_file = args.api_key_file or it.target.api_key_file
            if junit_dir:
                run.junit = os.path.join(junit_dir, f"{len(runs)}.xml")
            rc, collector, seconds = run_suite(it.target, run.junit)
            if rc in PYTEST_COULD_NOT_RUN:
                run.error = f"the smoke suite could not run (pytest exit code {rc}); see the message above"
                print(f"NOT CHECKED: {run.error}", flush=True)
                continue
            run.doc, text, run.passed = summarize(it.target, collector, rc, seconds)
            print(text, flush=True)
    except SmokeError as exc:
        print(f"vllm-fleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        for path in selection.temp_files():
            Path(path).unlink(missing_ok=True)
        if junit_dir:
            if runs:
                merge_junit(runs, args.junit)
            for name in os.listdir(junit_dir):
                os.unlink(os.path.join(junit_dir, name))
            os.rmdir(junit_dir)
    text, ok = fleet_summary(runs, selection.skipped)
    print(text)
    if args.json:
        doc = {"inventory": args.inventory, "limit": args.limit, "instance": args.instance, "passed": ok,
               "instances_passed": sum(r.passed for r in runs), "instances_total": len(runs),
               "skipped_hosts": [{"host": h, "reason": why} for h, why in selection.skipped],
               "targets": [r.as_dict() for r in runs]}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if any(r.error for r in runs):
        return EXIT_USAGE
    return EXIT_OK if ok else EXIT_FAILED


def cmd_smoke(args: argparse.Namespace) -> int:
    try:
        _check_flags(args)
    except SmokeError as exc:
        print(f"vllm-fleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _run_inventory(args) if args.inventory else _run_single(args)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "smoke", help="post-deploy smoke checks against running vLLM instances",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Exit 0 when every check passed (skips allowed), 1 when one failed, 2 on unusable input.\n\n"
            "Three ways to name what to check:\n"
            "  --url URL --model M --max-model-len N   one server, expectations as flags\n"
            "  --manifest FILE                         one instance, from the manifest the vllm role wrote\n"
            "  -i INVENTORY -l PATTERN                 every instance of every fleet host PATTERN selects,\n"
            "                                          one after another, as `ansible-playbook -l` would\n\n"
            "With -i, hosts without vllm_fleet_profile are skipped with a note, each instance's summary\n"
            "is printed as it finishes, then 'N of M instances passed'; exit 0 only when all passed,\n"
            "2 when any instance could not be checked (e.g. its profile does not resolve), else 1.\n"
            "--json then writes one document, always of this shape however many instances match:\n"
            "  {inventory, limit, instance, passed, instances_passed, instances_total,\n"
            "   skipped_hosts: [{host, reason}], targets: [{host, instance, <one instance's results>}]}\n"
            "where one instance's results are the document --url mode writes (or passed: false and an\n"
            "error when it could not be checked). --junit writes one file with a <testsuite> per\n"
            "instance named HOST/INSTANCE and test cases named CHECK[HOST/INSTANCE]."))
    for name, options in SUITE_OPTIONS:
        p.add_argument(name, **options)
    p.add_argument("-i", "--inventory", action="append", metavar="INVENTORY", help="inventory file or directory")
    p.add_argument("-l", "--limit", metavar="PATTERN",
                   help="Ansible host pattern of the hosts to check: a host, a group (spark), 'hopper:&rack1' "
                        "(in both), 'gpu:!rack2' (except), 'spark*', '~regex', @FILE (one pattern a line) or all. "
                        "A pattern that matches nothing is an error (Ansible only warns)")
    p.add_argument("--instance", metavar="NAME",
                   help="check only this instance of each host (default: every instance of each host)")
    p.add_argument("--manifest", metavar="FILE",
                   help="take every expectation from an instance manifest the vllm role wrote (/etc/vllm-fleet/<instance>.json)")
    p.add_argument("--host-checks", action="store_true",
                   help="with -i (over ssh) or --manifest (on this host): also check the unit, container, GPUs and journal")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML (with -i: one file for every instance)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON (with -i: the shape above)")
    p.set_defaults(func=cmd_smoke)
