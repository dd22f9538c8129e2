"""A vLLM stand-in server for tests: started with the flags a profile renders, on a free
localhost port, stopped afterwards. The stand-in is a test double (lab/vllm-standin/)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from vllm_fleet.serving import profiles
from vllm_fleet.serving.args import serve_args

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO / "lab" / "vllm-standin" / "bin" / "vllm"
MAX_LEN = 4096


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    port = free_port()
    cfg = profiles.resolve_serving(profile, {"serving": {"max_model_len": MAX_LEN, **(serving or {})}})
    args = serve_args(cfg, port)
    args[args.index("--host") + 1] = "127.0.0.1"
    for flag in drop:
        args = _without(args, flag)
    if served_name:
        args[args.index("--served-model-name") + 1] = served_name
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    run_env.update({"VLLM_STANDIN_LOAD_SECONDS": "0", **(env or {})})
    log = (tmp_path / f"standin-{port}.log").open("w")
    proc = subprocess.Popen([sys.executable, str(STANDIN), "serve", *args, *extra], env=run_env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, f"the stand-in exited {proc.returncode}: {(tmp_path / log.name).read_text()[-800:]}"
            try:
                httpx.get(f"{url}/version", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the stand-in did not listen within 15 s"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
