"""Fixtures shared by the packaging and lab tests."""

from __future__ import annotations

import pytest

from tests.installed import Installed, install


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel and the collection built from this checkout, installed outside it (once a session)."""
    return install(tmp_path_factory.mktemp("installed"))
