"""A vLLM stand-in server for tests: started with the flags a profile renders, on a free
localhost port, stopped afterwards. The stand-in is a test double (lab/vllm-standin/)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.local_server import local_server
from vllm_fleet.serving import profiles
from vllm_fleet.serving.args import serve_args

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO / "lab" / "vllm-standin" / "bin" / "vllm"
MAX_LEN = 4096


def _without(args: list[str], flag: str) -> list[str]:
    """args minus `flag` and its value (a following argument that is not a flag)."""
    out, skip = [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == flag:
            skip = i + 1 < len(args) and not args[i + 1].startswith("--")
            continue
        out.append(arg)
    return out


@contextmanager
def standin(tmp_path: Path, profile: str = "blackwell", serving: dict[str, Any] | None = None,
            drop: tuple[str, ...] = (), extra: tuple[str, ...] = (), env: dict[str, str] | None = None,
            served_name: str | None = None) -> Iterator[str]:
    """A stand-in `vllm serve` with the profile's rendered flags; yields its URL."""
    cfg = profiles.resolve_serving(profile, {"serving": {"max_model_len": MAX_LEN, **(serving or {})}})

    def command(port: int) -> list[str]:
        args = serve_args(cfg, port)
        args[args.index("--host") + 1] = "127.0.0.1"
        for flag in drop:
            args = _without(args, flag)
        if served_name:
            args[args.index("--served-model-name") + 1] = served_name
        return [sys.executable, str(STANDIN), "serve", *args, *extra]

    run_env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    run_env.update({"VLLM_STANDIN_LOAD_SECONDS": "0", **(env or {})})
    with local_server(command, tmp_path, run_env) as (port, _log):
        yield f"http://127.0.0.1:{port}"
