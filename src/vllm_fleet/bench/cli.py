"""The `vllm-fleet bench` sub-command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vllm_fleet.bench.load import (STANDIN_LABEL, BenchError, format_comparison, format_table, parse_levels,
                                   run_bench, seed_comparison)
from vllm_fleet.bench.plot import write_plot


def _read_key(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise BenchError(f"cannot read the API key file {path}: {exc.strerror}") from None


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        key = _read_key(args.api_key_file)
        levels, standin = asyncio.run(run_bench(args.url, args.model, args.concurrency, args.requests_per_level,
                                                args.max_tokens, key, args.timeout, args.standin))
    except BenchError as exc:
        print(f"vllm-fleet: {exc}", file=sys.stderr)
        return 2
    print(f"vLLM serving benchmark of {args.url} ({args.model}), streaming chat, max_tokens {args.max_tokens}")
    if standin:
        print("The server is the lab's vLLM STAND-IN: every figure below is simulated.")
    lines = format_table(levels, standin)
    comparison = seed_comparison(levels, args.max_tokens) if args.compare_seed else []
    if args.compare_seed:
        lines += format_comparison(comparison, args.concurrency, standin)
    print("\n".join(lines))
    if args.plot:
        print(write_plot(args.plot, levels, standin))
    if args.json:
        doc = {"url": args.url, "model": args.model, "max_tokens": args.max_tokens, "standin": standin,
               "label": STANDIN_LABEL if standin else None, "levels": [asdict(lv) for lv in levels],
               "seed_comparison": comparison or None}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 1 if any(lv.failed for lv in levels) else 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("bench", help="serving benchmark of one instance (tok/s, TTFT, ITL, spec acceptance)",
                              description="Exit 0 when every request succeeded, 1 when some failed, 2 when it could not run.")
    p.add_argument("--url", required=True, help="base URL, e.g. http://gpu1:8000")
    p.add_argument("--model", required=True, help="model id to request")
    p.add_argument("--concurrency", type=parse_levels, default=[1, 8, 32], help="levels, e.g. 1,8,32 (default)")
    p.add_argument("--requests-per-level", type=int, help="requests per level (default: max(8, 2 x concurrency))")
    p.add_argument("--max-tokens", type=int, default=512, help="output tokens per request (default 512)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per request (default 600)")
    p.add_argument("--api-key-file", help="file holding the API key")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="write a PNG plot (needs matplotlib)")
    p.add_argument("--compare-seed", action="store_true", help="print ratios against the seed article's figures")
    p.add_argument("--standin", action="store_true",
                   help="label every figure as a stand-in figure even if the server does not say it is one")
    p.set_defaults(func=cmd_bench)
