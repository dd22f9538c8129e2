"""'Did you mean' hints for misspelt names, shared by the schema errors and the rules."""

from __future__ import annotations

import difflib
from typing import Iterable


def suggest(name: str, choices: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest choice, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""
