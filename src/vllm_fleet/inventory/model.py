"""What reading an inventory produces: resolved hosts, the inventory, its errors and the values
lint must never look inside (vault-encrypted ones).

Values are shared between hosts that inherit them from the same group: treat `vars` as
read-only (copy before mutating), like `profiles.catalogue()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


class InventoryError(Exception):
    """An inventory that cannot be resolved; the message names the file and what to fix."""


class VaultValue:
    """A `!vault` value, kept encrypted: the lint must never need the plaintext."""

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: str) -> None:
        self.ciphertext = ciphertext

    def __str__(self) -> str:
        return "<vault>"

    def __repr__(self) -> str:
        return "VaultValue(<vault>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VaultValue) and other.ciphertext == self.ciphertext

    def __hash__(self) -> int:
        return hash(self.ciphertext)


class UnsafeText(str):
    """An `!unsafe` string: Ansible never templates it, so `{{` in it is literal text."""

    __slots__ = ()


@dataclass
class ResolvedHost:
    name: str
    groups: list[str]          # all groups the host belongs to incl. ancestors and 'all', sorted
    vars: dict[str, Any]       # final variables, as `ansible-inventory --host NAME` prints them
    sources: dict[str, str]    # var name -> path of the file whose value won
    # Vault-encrypted vars files that apply to this host, lowest precedence first: they may set
    # any variable, and only Ansible with the vault password can tell which.
    encrypted: tuple[str, ...] = ()


# A host's variables that come from somewhere other than group `all`: var name -> file.
OutsideAll = Callable[[str], dict[str, str]]


@dataclass
class Inventory:
    hosts: dict[str, ResolvedHost]
    files: list[str]           # every file read
    warnings: list[str] = field(default_factory=list)  # what Ansible would warn about and skip
    sources: list[str] = field(default_factory=list)   # the sources as given (-i)
    # Vault-encrypted inventory files whose hosts cannot be read (vars files: ResolvedHost.encrypted).
    encrypted_sources: list[str] = field(default_factory=list)
    # Sources that are `ansible-inventory --list` output (--from-json, or what lint got by running
    # a script or a plugin): their variables have no line to point at.
    listings: list[str] = field(default_factory=list)
    # `ansible-inventory --list` without --export flattens every variable into the host's own:
    # which group a variable came from is lost.
    flattened: bool = False
    outside_all_of: OutsideAll | None = field(default=None, repr=False, compare=False)
    _common: frozenset[str] | None = field(default=None, init=False, repr=False, compare=False)

    def vars_outside_all(self, name: str) -> dict[str, str]:
        """The variables host `name` gets from its own vars or a group other than `all`, with
        the file of each (the one that wins among those layers).

        For a flattened listing, a variable every host has is taken to be group `all`'s: that is
        what a fleet-wide default in group_vars/all looks like once flattened.
        """
        host = self.hosts[name]
        if self.flattened:
            if self._common is None:
                hosts = iter(self.hosts.values())
                common = set(next(hosts).vars)
                for other in hosts:
                    common.intersection_update(other.vars)
                self._common = frozenset(common)
            return {k: host.sources.get(k, "") for k in host.vars if k not in self._common}
        if self.outside_all_of is None:
            return {}
        return self.outside_all_of(name)


def describe(value: Any) -> str:
    """A value's kind for an error sentence: 'a list', "the string 'x'", 'an int (5)'."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    kind = type(value).__name__
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} ({value!r:.40})"
