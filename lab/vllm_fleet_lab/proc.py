"""Running commands for the lab, with errors a user can act on."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


class LabError(RuntimeError):
    """A lab step failed; the message says what happened and what to do about it."""


_T0 = time.monotonic()


def log(message: str) -> None:
    """Progress goes to stderr so `lab status` output on stdout stays clean for scripts."""
    print(f"[lab +{time.monotonic() - _T0:5.1f}s] {message}", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str | Path],
    *,
    check: bool = True,
    input: bytes | str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    hint: str = "",
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv, capture text output; on failure raise LabError with stderr and `hint`."""
    args = [str(a) for a in argv]
    data = input.decode() if isinstance(input, bytes) else input
    try:
        proc = subprocess.run(
            args, input=data, cwd=cwd, env=env, text=True, capture_output=True, timeout=timeout
        )
    except FileNotFoundError as exc:
        raise LabError(f"`{args[0]}` is not installed or not on PATH. {hint}".strip()) from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`{shlex.join(args)}` did not finish within {timeout} s. {hint}".strip()) from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise LabError(
            f"`{shlex.join(args)}` failed with exit code {proc.returncode}: {detail}\n{hint}".strip()
        )
    return proc


def docker(*args: str | Path, check: bool = True, input: str | None = None, hint: str = "") -> str:
    """Run the docker client and return its stripped stdout."""
    return run(["docker", *args], check=check, input=input, hint=hint).stdout.strip()


def docker_ok(*args: str | Path) -> bool:
    """True when the docker command succeeds (used for existence checks)."""
    return run(["docker", *args], check=False).returncode == 0
