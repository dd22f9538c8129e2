"""`vllm serve` entry point of the stand-in: parse, validate, "load", bind, serve.

Startup order follows vLLM: argument errors (exit 2) and startup validation errors (exit 1)
come before the engine loads; the port is bound early (so "address in use" fails fast) but only
*listens* once loading is done (VLLM_STANDIN_LOAD_SECONDS), as vLLM's API server only accepts
connections after the engine is up.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from vllm_standin import BANNER, envvars, gpu
from vllm_standin.cli import StartupError, parse_serve_args, resolve
from vllm_standin.engine import DEFAULT_SPARK_PREFILL_LIMIT, Engine
from vllm_standin.metrics import Metrics
from vllm_standin.openai_api import App
from vllm_standin.server import StandinHTTPServer
from vllm_standin.util import log
from vllm_standin.version import emulated_version


def _fail_startup(err: StartupError) -> int:
    # vLLM lets these escape as a traceback; the process exits 1.
    sys.stderr.write("Traceback (most recent call last):\n"
                     '  File "vllm/entrypoints/openai/api_server.py", in run_server '
                     "[STAND-IN simulated]\n"
                     f"{err.exc_type}: {err.message}\n")
    sys.stderr.flush()
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    env = dict(os.environ)
    try:
        version_text, version = emulated_version(env)
    except ValueError as exc:
        sys.stderr.write(f"vllm stand-in: {exc}\n")
        return 2
    args = parse_serve_args(argv, version)  # exits 2 on argparse errors
    if args.version:
        print(version_text)
        return 0
    if args.subcommand != "serve":
        sys.stderr.write("usage: vllm serve [model_tag] [options]\n")
        return 2
    try:
        config = resolve(args, env)
    except StartupError as err:
        return _fail_startup(err)

    stop = threading.Event()
    exit_code = {"value": 0}

    def on_signal(signum, _frame):
        log("INFO", "launcher.py", f"Received signal {signal.Signals(signum).name}; shutting down")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    print(f"=== {BANNER} ===", flush=True)
    print(f"=== emulating vLLM {version_text}; all timings and metrics are simulated ===",
          flush=True)
    log("INFO", "api_server.py", f"vLLM API server version {version_text} [STAND-IN]")
    log("INFO", "utils.py", f"non-default args: {_non_default(args, version)}")
    for name in envvars.unknown_vllm_vars(env, version):
        log("WARNING", "envs.py", f"Unknown vLLM environment variable detected: {name}")
    gpu_info = gpu.detect(env)
    spark = " (Spark-class: unified memory)" if gpu_info.spark_class else ""
    log("INFO", "platform", f"[STAND-IN] GPU class from {gpu_info.source}: {gpu_info.name}, "
        f"memory {gpu_info.memory_total}, compute capability {gpu_info.compute_cap or '?'}{spark}")
    if gpu_info.spark_class and not config.enable_chunked_prefill:
        limit = env.get("VLLM_STANDIN_SPARK_PREFILL_LIMIT", DEFAULT_SPARK_PREFILL_LIMIT)
        log("WARNING", "engine", f"[STAND-IN memory model] chunked prefill is off on a "
            f"Spark-class GPU: prompts over {limit} tokens will kill the engine")

    metrics = Metrics(config.served_model_names[0], config.num_speculative_tokens)
    engine = Engine(config, gpu_info, metrics, env)

    def on_engine_kill(signum, _frame):
        # Fault drills kill the engine of a running server (`docker exec ... kill -USR1 1`):
        # SIGUSR1 as a crash the API server notices (/health 503), SIGUSR2 as the crash real
        # vLLM 0.32 did not notice (/health 200, requests 500; lab-notes).
        engine.die(health_notices=signum == signal.SIGUSR1)

    signal.signal(signal.SIGUSR1, on_engine_kill)
    signal.signal(signal.SIGUSR2, on_engine_kill)
    app = App(config, engine, version_text, version, int(time.time()))
    host = config.host or "0.0.0.0"
    try:
        server = StandinHTTPServer((host, config.port), app, metrics)
        server.server_bind()
    except OSError as exc:
        sys.stderr.write(f"OSError: {exc}\n")
        return 1

    load_seconds = float(env.get("VLLM_STANDIN_LOAD_SECONDS", "2"))
    log("INFO", "core.py", f"[STAND-IN] simulating engine load for {load_seconds:g} s "
        "(port not listening yet)")
    if stop.wait(load_seconds):
        server.server_close()
        return 0
    server.server_activate()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    log("INFO", "api_server.py",
        f"Starting vLLM API server 0 on http://{host}:{config.port} [STAND-IN]")
    log("INFO", "launcher.py", "Application startup complete.")

    fault = env.get("VLLM_STANDIN_FAULT", "")
    if fault.startswith("exit_after:"):
        delay = float(fault.split(":", 1)[1])

        def crash():
            if not stop.wait(delay):
                log("ERROR", "core_client.py", "[STAND-IN fault exit_after] Engine core proc "
                    "died unexpectedly, shutting down client.")
                exit_code["value"] = 1
                stop.set()

        threading.Thread(target=crash, daemon=True).start()

    stop.wait()
    server.shutdown()
    server.server_close()
    return exit_code["value"]


def _non_default(args, version) -> dict:
    defaults = vars(parse_serve_args(["serve"], version))
    skip = {"subcommand", "version", "api_key"}  # never log the API key
    return {k: v for k, v in vars(args).items() if k not in skip and v != defaults.get(k)}
