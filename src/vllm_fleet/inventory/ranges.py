"""Host patterns as Ansible's inventory plugins expand them: ranges (`db[01:10:2]`, `[a:c]`),
`host:port` and the INI plugin's extra checks."""

from __future__ import annotations

import re
import string
from typing import Any, Iterable

from vllm_fleet.inventory.model import InventoryError

_PORT_SUFFIX = re.compile(r":[0-9]+\Z")


def expand_range(pattern: str, path: str) -> list[str]:
    """plugins.inventory.expand_hostname_range: `db[01:10:2]-[a:c]`, left to right."""
    head, _, rest = pattern.partition("[")
    nrange, sep, tail = rest.partition("]")
    if not sep:
        raise InventoryError(f"{path}: host pattern {pattern!r} has an unclosed '['; write it like web[01:10].")
    bounds = nrange.split(":")
    if len(bounds) not in (2, 3):
        raise InventoryError(f"{path}: host range in {pattern!r} must be begin:end or begin:end:step.")
    beg, end = bounds[0] or "0", bounds[1]
    step = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise InventoryError(f"{path}: host range in {pattern!r} must specify an end value.")
    width = len(beg) if beg[0] == "0" and len(beg) > 1 else 0
    if width and width != len(end):
        raise InventoryError(f"{path}: host range in {pattern!r} must use equal-length begin and end (e.g. 01:10).")
    letters = string.ascii_letters
    try:
        if beg in letters and end in letters and len(beg) == 1 and len(end) == 1:
            i_beg, i_end = letters.index(beg), letters.index(end)
            if i_beg > i_end:
                raise InventoryError(f"{path}: host range in {pattern!r} must have begin <= end.")
            seq: Iterable[Any] = letters[i_beg:i_end + 1:int(step)]
        else:
            seq = range(int(beg), int(end) + 1, int(step))
    except ValueError:
        raise InventoryError(f"{path}: host range in {pattern!r} is not numeric or single letters; fix the range.") from None
    out: list[str] = []
    for item in seq:
        name = f"{head}{str(item).zfill(width) if width else item}{tail}"
        out.extend(expand_range(name, path) if "[" in name else (name,))
    return out


def expand_hostpattern(pattern: Any, path: str, ini: bool) -> tuple[list[str], int | None]:
    """BaseInventoryPlugin.expand_hostpattern (+ the INI plugin's extra checks)."""
    if not isinstance(pattern, str):
        raise InventoryError(f"{path}: host pattern {pattern!r} must be a string; enclose it in quotes.")
    port: int | None = None
    host = pattern
    if _PORT_SUFFIX.search(pattern):
        # Ansible's own address grammar (IPv6, [host]:port, host:port). Only a trailing
        # `:digits` can yield a port; without one parse_address returns the pattern unchanged
        # (or fails, which Ansible also maps to the unchanged pattern), so it is skipped -
        # importing it costs ~60 ms.
        from ansible.parsing.utils.addresses import parse_address

        try:
            host, port = parse_address(pattern, allow_ranges=True)
        except Exception:  # noqa: BLE001 - Ansible treats any failure as "not an address"
            host, port = pattern, None
    names = expand_range(host, path) if "[" in host else [host]
    if ini:
        if pattern.strip().endswith(":") and port is None:
            raise InventoryError(
                f"{path}: invalid host pattern {pattern!r}: a trailing ':' is reserved for a port number."
            )
        if any(n.strip() == "---" for n in names):
            raise InventoryError(f"{path}: host pattern '---' looks like a YAML document start; is this file YAML?")
    return names, port
