#!/usr/bin/env python3
"""Start real vLLM (CPU build, from lab/real-vllm/install.sh's venv) and wait until it serves.

    serve.py MODEL_DIR [--port P] [--api-key K] [--enforce-eager] [--no-reasoning-parser]
                       [--venv DIR] [--log FILE] [-- EXTRA vLLM ARGS]

As a library (the realvllm tests): `start_server(...)` returns a `Server` that `stop()`s.
Standard library only, so it runs from the product venv or the real-vLLM venv alike.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPO / ".lab" / "real-vllm" / "venv"
SERVED_NAME = "nvidia/Qwen3.6-35B-A3B-NVFP4"
MAX_MODEL_LEN = 4096

# vLLM's CPU build needs the target device spelled out, and a KV cache size in GiB that fits
# a 2-core/24 GiB CI machine. HF offline: the model is a local folder; never reach a hub.
RUNTIME_ENV = {
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}


def venv_dir() -> Path:
    return Path(os.environ.get("VLLM_FLEET_REAL_VLLM_VENV", DEFAULT_VENV))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(
    model_dir: Path | str,
    port: int,
    *,
    venv: Path | None = None,
    api_key: str | None = None,
    enforce_eager: bool = True,
    reasoning_parser: bool = True,
    extra: list[str] | None = None,
) -> list[str]:
    """The `vllm serve` argv the lab uses (the same flags as the stand-in runs get)."""
    cmd = [str((venv or venv_dir()) / "bin" / "vllm"), "serve", str(model_dir),
           "--served-model-name", SERVED_NAME, "--max-model-len", str(MAX_MODEL_LEN),
           "--enable-chunked-prefill", "--dtype", "float32",
           "--host", "127.0.0.1", "--port", str(port)]
    if reasoning_parser:
        cmd += ["--reasoning-parser", "qwen3"]
    if enforce_eager:  # skips torch.compile: ~40 s to ready instead of ~60-95 s
        cmd.append("--enforce-eager")
    if api_key:
        cmd += ["--api-key", api_key]
    return cmd + list(extra or [])


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log_path: Path
    start_seconds: float = 0.0
    argv: list[str] = field(default_factory=list)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server and its engine-core child (own session: signal the group)."""
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(server: Server, timeout: float) -> None:
    """Wait for /health 200 and a listed model.

    /health alone is not proof: after an engine death it kept answering 200 (lab notes), so
    the caller should also send one real request before trusting the server.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"vllm exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            status, _ = _get(server.url + "/health", timeout=2)
            if status == 200:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    server.stop()
    raise TimeoutError(f"vllm not healthy after {timeout:.0f}s:\n{server.log_tail()}")


def start_server(
    model_dir: Path | str,
    *,
    log_path: Path,
    port: int | None = None,
    timeout: float = 300.0,
    venv: Path | None = None,
    **kwargs: object,
) -> Server:
    port = port or free_port()
    argv = serve_command(model_dir, port, venv=venv, **kwargs)  # type: ignore[arg-type]
    env = {**os.environ, **RUNTIME_ENV}
    env.pop("PYTHONPATH", None)  # the product's path must not shadow the venv's packages
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "wb") as log:
        # New session so stop() can signal vLLM's engine-core child with it.
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    server = Server(proc=proc, url=f"http://127.0.0.1:{port}", log_path=log_path, argv=argv)
    wait_ready(server, timeout)
    server.start_seconds = time.monotonic() - started
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key")
    parser.add_argument("--enforce-eager", action="store_true")
    parser.add_argument("--no-reasoning-parser", action="store_true")
    parser.add_argument("--venv", type=Path)
    parser.add_argument("--log", type=Path, default=REPO / ".lab" / "real-vllm" / "serve.log")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args(argv)
    server = start_server(args.model_dir, log_path=args.log, port=args.port, timeout=args.timeout,
                          venv=args.venv, api_key=args.api_key, enforce_eager=args.enforce_eager,
                          reasoning_parser=not args.no_reasoning_parser, extra=args.extra)
    print(json.dumps({"url": server.url, "pid": server.proc.pid, "log": str(server.log_path),
                      "start_seconds": round(server.start_seconds, 1)}), flush=True)
    # Forward SIGTERM/SIGINT: vLLM runs in its own session, so nobody else would stop it.
    # The handler only sets a flag; stopping (which waits on the child) happens here, since
    # Popen.wait() inside a handler would contend with the main thread's wait.
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    while server.proc.poll() is None and not stopping.is_set():
        stopping.wait(0.5)
    server.stop()
    return server.proc.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
