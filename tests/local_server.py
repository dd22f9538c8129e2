"""Starting a local test server (the vLLM stand-in) on a port of its own, and knowing that
what answers there is that server. No product imports: the stand-in's own tests use it too."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# The stand-in logs this once it listens (lab/vllm-standin/vllm_standin/main.py), as vLLM does.
READY_LINE = "Application startup complete."
PORT_TAKEN = "Address already in use"
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port() -> int:
    """A localhost port nothing listens on now, never the same one twice in this process: the
    kernel hands a just-closed port out again, and two stand-ins started side by side then
    shared one URL (CI, 2026-11-30: one scenario's smoke ran against another's server)."""
    with _handed_out_lock:
        while True:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def wait_until_listening(proc: subprocess.Popen, log: Path, timeout: float) -> bool:
    """True once `proc` itself says it listens; False if it exited because its port was taken.
    Probing the URL is not enough: another process on that port answers too, while `proc` is
    still on its way to the bind error."""
    deadline = time.monotonic() + timeout
    while READY_LINE not in (text := log.read_text(errors="replace")):
        if proc.poll() is not None:
            if PORT_TAKEN in text:
                return False
            raise AssertionError(f"the stand-in exited {proc.returncode}: {text[-800:]}")
        assert time.monotonic() < deadline, f"the stand-in did not listen within {timeout:g} s"
        time.sleep(0.05)
    return True


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def local_server(command: Callable[[int], list[str]], log_dir: Path, env: dict[str, str],
                 timeout: float = 15, attempts: int = 3) -> Iterator[tuple[int, Path]]:
    """Run `command(port)` on a port of its own until the block ends; yields (port, log).
    A port another process took in the meantime costs one more try, not a wrong server."""
    for _ in range(attempts):
        port = free_port()
        log_path = log_dir / f"standin-{port}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(command(port), env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            listening = wait_until_listening(proc, log_path, timeout)
        except BaseException:
            stop(proc)
            raise
        if listening:
            break
    else:
        raise AssertionError(f"{attempts} ports in a row were taken by other processes before the "
                             f"stand-in could bind them; the last log: {log_path}")
    try:
        yield port, log_path
    finally:
        stop(proc)
