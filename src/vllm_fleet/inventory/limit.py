"""Ansible host patterns (`--limit`, a play's `hosts:`) over a resolved inventory.

`vllm-fleet smoke -i INV -l PATTERN` must select the hosts `ansible-playbook -i INV -l PATTERN`
would, so this follows ansible-core 2.19's `inventory/manager.py` (read from its sources, not
guessed; tests/unit/test_limit.py holds it to the real `ansible` command):

* `split_host_pattern`: a pattern with commas is split on commas; otherwise one that parses as
  a single address (a host name, IPv4/IPv6, `web[1:3]`, optionally with `:port`) stays whole,
  and anything else is split on `:` (outside brackets).
* `InventoryManager.subset`: an element `@FILE` is replaced by the file's lines.
* `order_patterns`: plain patterns first, then `&` intersections, then `!` exclusions, whatever
  order they were written in; only `&`/`!` patterns means `all` first.
* `_match_one_pattern`/`_enumerate_matches`: `~regex` (re.match: anchored at the start only),
  else fnmatch; a pattern matching group names selects every host of those groups and their
  child groups; host names are tried when no group matched or the pattern is a regex/glob
  (contains `~ . ? * [`); a `[i]`, `[i:j]` or `[i:]` subscript picks from the matches.
* `_evaluate_patterns`: a pattern that is exactly a host name selects that host.

One deliberate difference: Ansible only warns about a pattern that matches nothing and goes on
without it (host_pattern_mismatch=warning). A smoke check or a benchmark of the wrong hosts is
worse than none, so here it is an error naming the pattern (like host_pattern_mismatch=error).
Known approximation, about order only: ResolvedHost carries each host's groups but not the
group tree, so a group's hosts (what a subscript counts in) are taken in the order the hosts
first appear in the inventory, which is Ansible's order for a group listing its hosts directly
(Ansible walks child groups after the group's own hosts). The selection itself is returned in
inventory order too: Ansible lists a limited play in its play pattern's order, not the limit's.
"""

from __future__ import annotations

import difflib
import fnmatch
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol


class LimitError(ValueError):
    """A host pattern that cannot be used; the message names it and says what to change."""


class _HasGroups(Protocol):
    groups: list[str]


# `[0:9]` / `[a:z]` host ranges (with an optional `:step`) inside a host name, as the address
# parser allows them when ranges are allowed.
_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_LABEL = rf"(?:\w|{_RANGE})(?:[\w-]|{_RANGE})*(?<![_-])"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.IGNORECASE | re.UNICODE)
_BRACKETED_PORT = re.compile(r"^\[(.+)\]:[0-9]+$")
_HOST_PORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):[0-9]+$")
# Separating ':' is any outside a bracketed expression (which may hold a range like [1:3]).
_COLON_PARTS = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
# pattern[3], pattern[1:3], pattern[2:], pattern[-1]; the old `[x-y]` form means `[x:y]`.
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
# Characters that make a pattern a glob or regex: host names are then tried even when groups matched.
_SPECIAL = (".", "?", "*", "[")
_MAX_LISTED = 12


def _is_one_address(pattern: str) -> bool:
    """Whether the pattern parses as one host (name, IP address, range) with an optional port."""
    address = pattern
    m = _BRACKETED_PORT.match(address)
    if m:
        address = m.group(1)
    m = _HOST_PORT.match(address)
    if m:
        address = m.group(1)
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(address))


def split_host_pattern(pattern: str) -> list[str]:
    """'a,b[1], c[2:3] , d' -> ['a', 'b[1]', 'c[2:3]', 'd']; 'hopper:&rack1' -> ['hopper', '&rack1']."""
    if "," in pattern:
        parts = pattern.split(",")
    elif _is_one_address(pattern):
        parts = [pattern]
    else:
        parts = _COLON_PARTS.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


def limit_patterns(limit: str | Sequence[str]) -> list[str]:
    """The patterns of a `--limit` value (or several), with each `@FILE` replaced by its lines."""
    items = [limit] if isinstance(limit, str) else list(limit)
    patterns: list[str] = []
    for item in items:
        for part in split_host_pattern(item):
            if not part.startswith("@"):
                patterns.append(part)
                continue
            path = Path(part[1:])
            if not path.exists():
                raise LimitError(f"the limit file {path} named by {part!r} does not exist; "
                                 "write one host pattern per line into it or fix the path.")
            if not path.is_file():
                raise LimitError(f"{part!r}: a limit starting with '@' must name a file, and {path} is not one.")
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise LimitError(f"cannot read the limit file {path}: {exc}") from None
            # Ansible takes each line whole (not split again), so '!web1' on a line excludes.
            patterns += [line.strip() for line in text.split("\n") if line.strip()]
    return patterns


def order_patterns(patterns: Iterable[str]) -> list[str]:
    """Plain patterns, then `&` intersections, then `!` exclusions (Ansible's order_patterns)."""
    regular, intersect, exclude = [], [], []
    for p in patterns:
        if not p:
            continue
        (exclude if p[0] == "!" else intersect if p[0] == "&" else regular).append(p)
    return (regular or ["all"]) + intersect + exclude


class HostMatcher:
    """Evaluates host patterns over `hosts` (name -> anything with `.groups`, the host's groups
    including ancestors and 'all', as ResolvedHost has them), in the inventory's host order."""

    def __init__(self, hosts: Mapping[str, _HasGroups]) -> None:
        self.hosts = hosts
        # 'all' holds every host whatever its groups say; first, as in Ansible's group order.
        members: dict[str, list[str]] = {"all": list(hosts)}
        for name, host in hosts.items():
            for group in getattr(host, "groups", None) or []:
                if group != "all":
                    members.setdefault(group, []).append(name)
        self.groups = members

    # --- one pattern ----------------------------------------------------------------------
    def _compile(self, pattern: str) -> re.Pattern[str]:
        try:
            return re.compile(pattern[1:] if pattern.startswith("~") else fnmatch.translate(pattern))
        except re.error as exc:
            raise LimitError(f"host pattern {pattern!r} is not a valid regular expression ({exc}); fix it.") from None

    def enumerate(self, pattern: str) -> list[str]:
        """Hosts matching a pattern without &/! or subscript; duplicates kept, as Ansible does."""
        rx = self._compile(pattern)
        results: list[str] = []
        matching_groups = [g for g in self.groups if rx.match(g)]
        for group in matching_groups:
            results += self.groups[group]
        if not matching_groups or pattern.startswith("~") or any(c in pattern for c in _SPECIAL):
            results += [h for h in self.hosts if rx.match(h)]
        return results

    def match_one(self, pattern: str) -> list[str]:
        bare = pattern[1:] if pattern[:1] in ("&", "!") else pattern
        expr, subscript = bare, None
        m = _SUBSCRIPT.match(bare) if not bare.startswith("~") else None
        if m:
            expr, index, start, _, end = m.groups()
            subscript = (int(index), None) if index else (int(start), int(end) if end else -1)
        found = self.enumerate(expr)
        if not found:
            raise LimitError(self._no_match(bare))
        if subscript is None:
            return found
        first, last = subscript
        if last:  # Ansible's own test: [i:0] means [i]; [i:] arrives as last == -1
            picked = found[first:(len(found) - 1 if last == -1 else last) + 1]
        else:
            picked = [found[first]] if -len(found) <= first < len(found) else []
        if not picked:
            raise LimitError(f"host pattern {bare!r}: {expr!r} matches {len(found)} host(s), so the subscript "
                             "selects none; subscripts count from 0.")
        return picked

    def _no_match(self, pattern: str) -> str:
        names = [g for g in self.groups if g not in ("all", "ungrouped")]
        near = difflib.get_close_matches(pattern.lstrip("~"), names + list(self.hosts), n=3)
        hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
        listed = ", ".join(sorted(names)[:_MAX_LISTED]) + (", ..." if len(names) > _MAX_LISTED else "")
        groups = f" The inventory's groups are: {listed}." if names else " The inventory has no groups besides 'all'."
        return f"host pattern {pattern!r} matches no host or group of the inventory{hint}{groups}"

    # --- a whole limit ----------------------------------------------------------------------
    def evaluate(self, patterns: Sequence[str]) -> list[str]:
        """Ansible's _evaluate_patterns: unions in order, then intersections, then exclusions."""
        selected: list[str] = []
        for p in order_patterns(patterns):
            if p in self.hosts:  # a plain host name, even one that looks like a pattern
                selected.append(p)
                continue
            that = self.match_one(p)
            if p[0] == "!":
                drop = set(that)
                selected = [h for h in selected if h not in drop]
            elif p[0] == "&":
                keep = set(that)
                selected = [h for h in selected if h in keep]
            else:
                seen = set(selected)
                selected += [h for h in that if h not in seen]
        return list(dict.fromkeys(selected))


def select_hosts(hosts: Mapping[str, _HasGroups], limit: str | Sequence[str]) -> list[str]:
    """Names of the hosts `--limit LIMIT` selects, in inventory order. LimitError (a sentence)
    for a pattern that matches nothing, a bad regex or subscript, or an empty selection."""
    patterns = limit_patterns(limit)
    shown = limit if isinstance(limit, str) else ",".join(limit)
    if not patterns:
        raise LimitError(f"the limit {shown!r} holds no host pattern; name a host, a group or 'all'.")
    chosen = set(HostMatcher(hosts).evaluate(patterns))
    selected = [name for name in hosts if name in chosen]
    if not selected:
        raise LimitError(f"the limit {shown!r} selects no host: its intersections (&) and exclusions (!) "
                         "leave nothing of what the other patterns match.")
    return selected
