"""What pytest-xdist's workers share: their common base directory, and the files the lab stream
leaves there for the suite stream (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


def shared_dir(config: pytest.Config) -> Path | None:
    """The base directory pytest-xdist's workers share, or None outside pytest-xdist. The
    controller hands each worker `--basetemp <shared>/<worker id>`, so it is known before any
    fixture (pytest-xdist's recipe for session fixtures shared by workers uses the same parent)."""
    if not hasattr(config, "workerinput") or not config.option.basetemp:
        return None
    return Path(config.option.basetemp).resolve().parent


def lab_up_marker(config: pytest.Config) -> Path | None:
    """Written by the lab stream once `lab up` returned (or failed); None outside pytest-xdist."""
    shared = shared_dir(config)
    return shared / "lab-up" if shared else None


def converged_marker(config: pytest.Config) -> Path | None:
    """Written by the lab stream once the first converge of the lab returned, and by each stream's
    session end (tests/conftest.py); None outside pytest-xdist."""
    shared = shared_dir(config)
    return shared / "lab-converged" if shared else None
