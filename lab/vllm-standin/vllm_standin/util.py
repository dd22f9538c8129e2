"""Logging in vLLM's format (`INFO 11-27 10:00:00 [file.py] message`), to stderr, flushed."""

from __future__ import annotations

import sys
import time


def log(level: str, source: str, message: str, prefix: str = "") -> None:
    stamp = time.strftime("%m-%d %H:%M:%S")
    head = f"{prefix} " if prefix else ""
    sys.stderr.write(f"{head}{level} {stamp} [{source}] {message}\n")
    sys.stderr.flush()
