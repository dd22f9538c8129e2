"""The `vllm-fleet bench` sub-command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vllm_fleet.bench.load import (STANDIN_LABEL, TABLE_HEADER, BenchError, LevelResult, Progress, format_comparison,
                                   format_level, parse_levels, requests_for_level, run_bench, seed_comparison)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _read_key(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise BenchError(f"cannot read the API key file {path}: {exc.strerror}") from None


def check_output_path(flag: str, path: str, suffix: str | None = None) -> None:
    """Refuse, before any load is sent, an output file that could not be written at the end:
    a sweep of many minutes must not be lost to a typo in a directory name."""
    target = Path(path)
    if target.is_dir():
        raise BenchError(f"{flag} {path} is a directory; name a file in it, like {target / ('bench' + (suffix or '.json'))}. "
                         "Nothing was sent to the server.")
    if suffix and target.suffix.lower() != suffix:
        raise BenchError(f"{flag} writes a {suffix[1:].upper()} file; name it with {suffix} "
                         f"(got {path!r}). Nothing was sent to the server.")
    parent = target.parent
    if not parent.is_dir():
        raise BenchError(f"{flag} {path}: the directory {parent} does not exist; create it (mkdir -p {parent}) "
                         "or name another file. Nothing was sent to the server.")
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise BenchError(f"{flag} {path}: this user cannot write there; name a file in a writable directory. "
                         "Nothing was sent to the server.")


def _check_before_load(args: argparse.Namespace) -> None:
    if not args.url.startswith(("http://", "https://")):
        raise BenchError(f"--url {args.url!r} needs its scheme, like http://gpu1:8000")
    if args.plot:
        from vllm_fleet.bench.plot import PlotUnavailable, require_matplotlib

        try:
            require_matplotlib()
        except PlotUnavailable as exc:
            raise BenchError(f"{exc}. Nothing was sent to the server.") from None
        check_output_path("--plot", args.plot, ".png")
    if args.json:
        check_output_path("--json", args.json)
    if args.requests_per_level is not None and args.requests_per_level < 1:
        raise BenchError("--requests-per-level must be 1 or more")
    if args.max_tokens < 1:
        raise BenchError("--max-tokens must be 1 or more")


def _emit(lines: list[str], progress: Progress | None) -> None:
    if progress:
        progress.clear()
    # flush: in a pipe (| tee) stdout is block-buffered and a level's line would wait for the end.
    print("\n".join(lines), flush=True)


def _write_outputs(args: argparse.Namespace, levels: list[LevelResult], standin: bool,
                   comparison: list[dict[str, Any]]) -> None:
    """JSON first: if the plot then fails, the figures are already saved."""
    if args.json:
        doc = {"url": args.url, "model": args.model, "max_tokens": args.max_tokens, "standin": standin,
               "label": STANDIN_LABEL if standin else None, "levels": [asdict(lv) for lv in levels],
               "seed_comparison": comparison or None}
        try:
            Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise BenchError(f"cannot write --json {args.json}: {exc.strerror}; the table above has the figures") from None
    if args.plot:
        from vllm_fleet.bench.plot import PlotInfo, write_plot

        info = PlotInfo(model=args.model, url=args.url, max_tokens=args.max_tokens, standin=standin)
        try:
            print(write_plot(args.plot, levels, info))
        except OSError as exc:
            raise BenchError(f"cannot write --plot {args.plot}: {exc.strerror}; the table above has the figures") from None


class _Report:
    """What the sweep prints as it goes: the header once the server checks passed, then a row
    per level the moment it finishes."""

    def __init__(self, args: argparse.Namespace, progress: Progress | None) -> None:
        self.args, self.progress, self.standin = args, progress, False

    def ready(self, standin: bool) -> None:
        args, self.standin = self.args, standin
        lines = [f"vLLM serving benchmark of {args.url} ({args.model}), streaming chat, max_tokens {args.max_tokens}"]
        if standin:
            lines.append("The server is the lab's vLLM STAND-IN: every figure below is simulated.")
        for level in args.concurrency:
            if args.requests_per_level and requests_for_level(level, args.requests_per_level) != args.requests_per_level:
                lines.append(f"note: level {level} sends {level} requests, not --requests-per-level "
                             f"{args.requests_per_level}, so that {level} are really in flight at once")
        _emit(lines + [TABLE_HEADER], self.progress)

    def level(self, lv: LevelResult) -> None:
        _emit(format_level(lv, self.standin), self.progress)


def cmd_bench(args: argparse.Namespace) -> int:
    progress = Progress.for_terminal()
    report = _Report(args, progress)
    try:
        _check_before_load(args)
        key = _read_key(args.api_key_file)
        levels, standin = asyncio.run(run_bench(
            args.url, args.model, args.concurrency, args.requests_per_level, args.max_tokens, key, args.timeout,
            args.standin, on_ready=report.ready, on_level=report.level, progress=progress))
        comparison = seed_comparison(levels, args.max_tokens) if args.compare_seed else []
        if args.compare_seed:
            _emit(format_comparison(comparison, args.concurrency, standin), None)
        _write_outputs(args, levels, standin, comparison)
    except BenchError as exc:
        if progress:
            progress.clear()
        print(f"vllm-fleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_FAILED if any(lv.failed for lv in levels) else EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="serving benchmark of one instance (tok/s, TTFT, ITL, spec acceptance)",
        description="Streams chat completions at each concurrency level and prints a line per level as it "
                    "finishes (with a progress bar on a terminal). The output paths, matplotlib (for --plot) and "
                    "the model (it must be in /v1/models) are checked before any load is sent. "
                    "Exit 0 when every request succeeded, 1 when some failed, 2 when it could not run.")
    p.add_argument("--url", required=True, help="base URL, e.g. http://gpu1:8000")
    p.add_argument("--model", required=True, help="model id to request; must be one the server lists in /v1/models")
    p.add_argument("--concurrency", type=parse_levels, default=[1, 8, 32],
                   help="levels: requests in flight at once, e.g. 1,8,32 (default)")
    p.add_argument("--requests-per-level", type=int,
                   help="requests per level (default: max(8, 2 x level)); a level above it sends as many requests "
                        "as the level instead, so the concurrency measured is the one reported")
    p.add_argument("--max-tokens", type=int, default=512, help="output tokens per request (default 512)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per request (default 600)")
    p.add_argument("--api-key-file", help="file holding the API key")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png",
                   help="write a PNG of tok/s, TTFT and ITL by level (needs matplotlib: pip install 'vllm-fleet[bench]')")
    p.add_argument("--compare-seed", action="store_true", help="print ratios against the seed article's figures")
    p.add_argument("--standin", action="store_true",
                   help="label every figure as a stand-in figure even if the server does not say it is one")
    p.set_defaults(func=cmd_bench)
