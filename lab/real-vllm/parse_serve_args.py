#!/usr/bin/env python3
"""Parse `vllm serve` argument lists with the installed vLLM's OWN parser; start nothing.

Run with the real-vLLM venv's python. Input on stdin: JSON {name: [args after "vllm serve"]}.
Output on stdout: JSON {name: {"ok": bool, "stage": ..., "error": ..., "parsed": {...}}}.

The parser is built the way `vllm/entrypoints/cli/main.py` builds it in vLLM 0.32: a
FlexibleArgumentParser with a `subparser` sub-command group, into which
`ServeSubcommand.subparser_init` adds `serve` (that calls `make_arg_parser`, which registers
FrontendArgs + AsyncEngineArgs). Then `ServeSubcommand.validate` runs
`validate_parsed_serve_args`, and `validate_api_server_args` (what `vllm serve` runs in
setup_server before binding the port: tool-call and reasoning parser names against vLLM's
registries). Parser names are checked against the registries once more here in case a
name only reaches the config later.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from typing import Any


def build_parser() -> tuple[Any, Any]:
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm", description="vLLM CLI")  # prog as the real CLI names itself
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    serve = ServeSubcommand()
    serve.subparser_init(subparsers).set_defaults(dispatch_function=serve.cmd)
    return parser, serve


def check_parser_names(ns: Any) -> None:
    """Parser names, resolved through vLLM's own managers (their KeyError is what `vllm serve`
    prints when it fails on an unknown name; an unknown reasoning parser only fails there)."""
    from vllm.reasoning import ReasoningParserManager
    from vllm.tool_parsers.abstract_tool_parser import ToolParserManager

    if getattr(ns, "reasoning_parser", None):
        ReasoningParserManager.get_reasoning_parser(ns.reasoning_parser)
    if getattr(ns, "tool_call_parser", None):
        ToolParserManager.get_tool_parser(ns.tool_call_parser)


def check(parser: Any, serve: Any, args: list[str]) -> dict[str, Any]:
    """ok, or the failing stage with the exit code and last stderr line `vllm serve` gives."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            ns = parser.parse_args(["serve", *args])
    except SystemExit as exc:  # argparse reports errors by exiting (code 2)
        lines = err.getvalue().strip().splitlines()
        return {"ok": False, "stage": "argparse", "exit_code": exc.code, "error": lines[-1] if lines else ""}
    from vllm.entrypoints.launchers.launcher import validate_api_server_args

    stages = (("validate", serve.validate), ("setup_server", validate_api_server_args),
              ("parser_lookup", check_parser_names))
    for stage, validate in stages:
        try:
            validate(ns)
        except Exception as exc:  # noqa: BLE001 - vLLM raises TypeError/ValueError/KeyError here
            # Uncaught in `vllm serve`: a traceback whose last line is this, exit code 1.
            return {"ok": False, "stage": stage, "exit_code": 1, "error": f"{type(exc).__name__}: {exc}"}
    parsed = {k: v for k, v in vars(ns).items() if k != "dispatch_function"}
    return {"ok": True, "parsed": json.loads(json.dumps(parsed, default=repr))}


def main() -> int:
    cases: dict[str, list[str]] = json.load(sys.stdin)
    parser, serve = build_parser()
    out = {name: check(parser, serve, args) for name, args in cases.items()}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
