"""The `vllm-fleet smoke` sub-command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vllm_fleet.smoke.options import SUITE_OPTIONS
from vllm_fleet.smoke.runner import EXIT_OK, EXIT_FAILED, EXIT_USAGE, SmokeError, Target, run_suite, summarize
from vllm_fleet.smoke.target import target_from_inventory, target_from_manifest


def _target_from_args(args: argparse.Namespace) -> Target:
    if args.manifest:
        if args.inventory:
            raise SmokeError("give either --manifest or -i INVENTORY, not both")
        t = target_from_manifest(args.manifest, args.host_checks)
        t.url = args.url or t.url
        t.api_key_file = args.api_key_file or t.api_key_file
        return t
    if args.inventory:
        if not args.limit:
            raise SmokeError("with -i INVENTORY, name the host to check with -l HOST")
        t = target_from_inventory(args.inventory, args.limit, args.instance, args.host_checks)
        t.url = args.url or t.url
        t.api_key_file = args.api_key_file or t.api_key_file
        return t
    missing = [f for f, v in (("--url", args.url), ("--model", args.model), ("--max-model-len", args.max_model_len)) if not v]
    if missing:
        raise SmokeError(f"give {', '.join(missing)} (or -i INVENTORY -l HOST to take them from the inventory)")
    return Target(url=args.url, model=args.model, max_model_len=args.max_model_len, vllm_version=args.vllm_version,
                  api_key_file=args.api_key_file, expect_tools=args.expect_tools,
                  expect_spec_decode=args.expect_spec_decode, long_prompt_ratio=args.long_prompt_ratio,
                  timeout=args.timeout, host=args.host, unit=args.unit, container=args.container,
                  image_digest=args.image_digest, expected_args_file=args.expected_args_file)


def cmd_smoke(args: argparse.Namespace) -> int:
    target: Target | None = None
    try:
        target = _target_from_args(args)
        rc, collector, seconds = run_suite(target, args.junit)
    except SmokeError as exc:
        print(f"vllm-fleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        for path in target.temp_files if target else []:
            Path(path).unlink(missing_ok=True)
    if rc in (3, 4):  # pytest: internal error / usage error (e.g. an unreadable key file)
        print(f"vllm-fleet: the smoke suite could not run (pytest exit code {rc}); see the message above",
              file=sys.stderr)
        return EXIT_USAGE
    doc, text, ok = summarize(target, collector, rc, seconds)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return EXIT_OK if ok else EXIT_FAILED


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "smoke", help="post-deploy smoke checks against a running vLLM instance",
        description="Exit 0 when every check passed (skips allowed), 1 when one failed, 2 on unusable input.")
    for name, options in SUITE_OPTIONS:
        p.add_argument(name, **options)
    p.add_argument("-i", "--inventory", action="append", metavar="INVENTORY", help="inventory file or directory")
    p.add_argument("-l", "--limit", metavar="HOST", help="the inventory host to check")
    p.add_argument("--instance", metavar="NAME", help="the host's instance (default: its first, `main`)")
    p.add_argument("--manifest", metavar="FILE",
                   help="take every expectation from an instance manifest the vllm role wrote (/etc/vllm-fleet/<instance>.json)")
    p.add_argument("--host-checks", action="store_true",
                   help="with -i (over ssh) or --manifest (on this host): also check the unit, container, GPUs and journal")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.set_defaults(func=cmd_smoke)
