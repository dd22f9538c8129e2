"""Fixtures for tests against REAL vLLM (CPU build) serving the scripted tiny Qwen3 model.

Marker `realvllm`. These tests skip (with the reason) unless the cached venv of
lab/real-vllm/install.sh exists, or VLLM_FLEET_REAL_VLLM=1 (then the session installs it).
VLLM_FLEET_REAL_VLLM=0 skips them even with the venv present.
Everything heavy is session-scoped: one install check, one model build, and at most ONE real
vLLM server alive at a time (the machine has 2 cores; a server takes ~3 GiB and a core). The
pool serves either tiny model (dense by default, `real_vllm.get("moe", ...)`); tests on a model
other than the dense one carry the real_vllm_model marker and run last, so each model's server
starts once.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.local_server import free_port
from tests.realvllm.support import (
    BUILDER,
    CLI_NEGATIVE,
    INSTALL,
    LOG_DIR,
    PARSER,
    TIMINGS,
    TIMINGS_FILE,
    rendered_cases,
    run_in_venv,
    serve,
    skip_reason,
    venv_dir,
    venv_ready,
)

HERE = Path(__file__).resolve().parent
DEFAULT_ARCH = "dense"
# Marker naming the tiny model a test needs real vLLM to serve (see pytest_configure).
MODEL_MARK = "real_vllm_model"
# When this session began: a timings file older than that is another session's.
_STARTED = time.time()


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too so the directory works before pyproject.toml lists the marker.
    config.addinivalue_line("markers", "realvllm: needs real vLLM (CPU build) from lab/real-vllm")
    config.addinivalue_line(
        "markers", f"{MODEL_MARK}(arch): the test needs real vLLM serving that tiny model "
        f"(default {DEFAULT_ARCH}); such tests run after the others, grouped by model")


def _server_group(item: pytest.Item) -> tuple[int, str]:
    """Sort key: the default (dense) model or no server first, then each other model's tests."""
    mark = item.get_closest_marker(MODEL_MARK)
    arch = mark.args[0] if mark else DEFAULT_ARCH
    return (0, "") if arch == DEFAULT_ARCH else (1, arch)


# trylast: after pytest's own fixture-based reordering, which would otherwise undo ours.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = skip_reason()
    slots: list[int] = []
    for index, item in enumerate(items):
        if HERE not in Path(item.path).resolve().parents:
            continue
        slots.append(index)
        item.add_marker(pytest.mark.realvllm)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
    # One real server at a time and each start costs ~25-40 s: tests on another model (the
    # MoE differential cases) go after every dense one, so the dense servers are not started
    # twice. A stable sort of this directory's items only, in their own slots, leaves other
    # directories' order alone and the order within each group as written.
    ordered = sorted((items[i] for i in slots), key=_server_group)
    for index, item in zip(slots, ordered, strict=True):
        items[index] = item


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under pytest-xdist the timings are taken in a worker; the file carries them to the summary.
    if TIMINGS:
        TIMINGS_FILE.parent.mkdir(parents=True, exist_ok=True)
        TIMINGS_FILE.write_text(json.dumps(TIMINGS, indent=1) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    timings = TIMINGS
    if not timings and TIMINGS_FILE.exists() and TIMINGS_FILE.stat().st_mtime >= _STARTED:
        timings = json.loads(TIMINGS_FILE.read_text())
    if not timings:
        return
    terminalreporter.section("real vLLM timings (s)")
    for key, value in timings.items():
        terminalreporter.write_line(f"{key:40s} {value:7.1f}")


@pytest.fixture(scope="session")
def real_venv() -> Path:
    if os.environ.get("VLLM_FLEET_REAL_VLLM") == "1":
        start = time.monotonic()
        proc = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True)
        if proc.returncode:
            output = proc.stdout[-3000:] + "\n" + proc.stderr[-3000:]
            pytest.fail(f"install.sh failed ({proc.returncode}):\n{output}")
        TIMINGS["install.sh (0 when cached)"] = time.monotonic() - start
    if not venv_ready():
        pytest.fail(f"real vLLM venv not ready at {venv_dir()}")
    return venv_dir()


@pytest.fixture(scope="session")
def venv_python(real_venv: Path) -> Path:
    return real_venv / "bin" / "python"


@pytest.fixture(scope="session")
def tiny_models(venv_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both scripted checkpoints, built fresh once per session (seconds)."""
    root = tmp_path_factory.mktemp("tiny-qwen3")
    out = {}
    for arch in ("dense", "moe"):
        start = time.monotonic()
        proc = run_in_venv(venv_python, [str(BUILDER), str(root / arch), "--arch", arch])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        TIMINGS[f"build tiny model ({arch})"] = time.monotonic() - start
        out[arch] = root / arch
    return out


@pytest.fixture(scope="session")
def parsed_by_vllm(venv_python: Path) -> dict[str, Any]:
    """rendered_cases() + CLI_NEGATIVE through real vLLM's own parser (one ~15 s subprocess)."""
    start = time.monotonic()
    cases = {**rendered_cases(), **CLI_NEGATIVE}
    proc = run_in_venv(venv_python, [str(PARSER)], input=json.dumps(cases), timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    TIMINGS["parse args with vllm's parser"] = time.monotonic() - start
    return json.loads(proc.stdout)


class RealVllm:
    """At most one real vLLM server alive: asking for another model or config stops the current one."""

    def __init__(self, venv: Path, model_dirs: dict[str, Path]) -> None:
        self.venv = venv
        self.model_dirs = model_dirs
        self.current: tuple[tuple[str, Any], ...] | None = None
        self.server: Any = None

    def get(self, arch: str = DEFAULT_ARCH, **options: Any) -> Any:
        """The server for tiny model `arch` started with serve.start_server(**options)."""
        key = (("arch", arch), *sorted(options.items()))
        if self.server is not None and key == self.current and self.server.proc.poll() is None:
            return self.server
        self.stop()
        # The default model stays out of the label so the timings keep their earlier names.
        label = ",".join(f"{k}={v}" for k, v in key if (k, v) != ("arch", DEFAULT_ARCH)) or "default"
        # A port from the stand-ins' pool: the two run side by side in this process.
        self.server = serve.start_server(self.model_dirs[arch], venv=self.venv, timeout=420, port=free_port(),
                                         log_path=LOG_DIR / f"vllm-{label}.log", **options)
        self.current = key
        TIMINGS[f"real vllm start ({label})"] = self.server.start_seconds
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.server = None
        self.current = None


_POOLS: list[RealVllm] = []


@pytest.fixture(scope="session")
def real_vllm(real_venv: Path, tiny_models: dict[str, Path]) -> Iterator[RealVllm]:
    pool = RealVllm(real_venv, tiny_models)
    _POOLS.append(pool)
    yield pool
    pool.stop()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the server once this directory's last test ran: the session fixture would keep its
    ~3 GiB alive through the lab tests (whose real-vLLM host needs its own ~2.2 GiB)."""
    if HERE in Path(item.path).resolve().parents and (
            nextitem is None or HERE not in Path(nextitem.path).resolve().parents):
        for pool in _POOLS:
            pool.stop()
        if TIMINGS and "start" in _CLOCK:  # this directory's wall time, install included
            TIMINGS["realvllm tests total"] = time.monotonic() - _CLOCK["start"]


_CLOCK: dict[str, float] = {}


@pytest.fixture(scope="session", autouse=True)
def _suite_clock() -> None:
    _CLOCK.setdefault("start", time.monotonic())
