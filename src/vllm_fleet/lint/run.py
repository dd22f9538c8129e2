"""`vllm-fleet lint`: every problem of an inventory at once, each naming file, line, host,
variable and rule.

Hosts with the same fleet variables get the same verdict, so each distinct set is checked once;
that is what keeps 10,000 hosts fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllm_fleet.inventory import Inventory, ResolvedHost, locate
from vllm_fleet.lint import membership
from vllm_fleet.lint.check import SCHEMA_RULE, check_fleet_vars, encrypted_file_note
from vllm_fleet.lint.unknown import TEMPLATE_MARKERS, find_unknown
from vllm_fleet.rules import ERROR, INFO, SEVERITY_ORDER, WARNING, Violation, play_settings, schema
from vllm_fleet.serving import router

__all__ = ["SCHEMA_RULE", "Located", "check_fleet_vars", "fleet_vars", "in_scope", "lint_inventory"]

in_scope = membership.in_scope


@dataclass
class Located:
    violation: Violation
    file: str | None
    line: int | None

    def sort_key(self) -> tuple:
        v = self.violation
        return (self.file or "~", self.line or 0, v.host, SEVERITY_ORDER[v.severity], v.rule, v.var, v.message)

    def as_dict(self) -> dict[str, Any]:
        return {**self.violation.as_dict(), "file": self.file, "line": self.line}


def fleet_vars(host: ResolvedHost) -> dict[str, Any]:
    return {k: v for k, v in host.vars.items() if isinstance(k, str) and k.startswith(schema.NAMESPACE)}


def _signature(fv: dict[str, Any], encrypted: bool) -> str:
    """Equal for hosts whose fleet variables are equal, and only for those.

    The reader bounds what YAML aliases may expand to, so this walk is bounded too.
    """
    try:
        text = json.dumps(fv, sort_keys=True, default=repr)
    except TypeError:  # keys of mixed types cannot be sorted: the order then tells sets apart
        text = json.dumps(fv, default=repr)
    if any(marker in text for marker in TEMPLATE_MARKERS):
        # `!unsafe` text prints as a plain string but is not a template
        text += repr([u.path for u in find_unknown(fv)])
    return f"{int(encrypted)}{text}"


class _Verdicts:
    """check_fleet_vars once per distinct set of fleet variables.

    Hosts of one group share the very value objects they inherit, so the identities of the
    values find most hosts' verdict without serialising anything.
    """

    def __init__(self) -> None:
        self._by_ids: dict[tuple, list[Violation]] = {}
        self._by_signature: dict[str, list[Violation]] = {}

    def get(self, fv: dict[str, Any], encrypted: bool) -> list[Violation]:
        ids = (encrypted, *((k, id(v)) for k, v in fv.items()))
        found = self._by_ids.get(ids)
        if found is None:
            key = _signature(fv, encrypted)
            found = self._by_signature.get(key)
            if found is None:
                found = self._by_signature[key] = check_fleet_vars(fv, "", encrypted=encrypted)
            self._by_ids[ids] = found
        return found


class _Locator:
    """File and line of a violation, from where the host's variable was set."""

    def __init__(self, inventory: Inventory) -> None:
        self.unlocatable = set(inventory.listings)
        self.cache: dict[tuple[str, str, str], int | None] = {}
        self.per_host: dict[str, bool] = {}

    def __call__(self, host: ResolvedHost, var: str) -> tuple[str | None, int | None]:
        top = var.split(".")[0].split("[")[0]
        if top in host.sources:
            source, path = host.sources[top], var
        else:  # not set anywhere: point at the host's profile, where its group sets things
            source, path = host.sources.get("vllm_fleet_profile"), "vllm_fleet_profile"
        return source, self.line(source, path, host.name)

    def line(self, source: str | None, path: str, host_name: str) -> int | None:
        if not source or source.startswith("<") or source in self.unlocatable:
            return None
        per_host = self.per_host.get(source)
        if per_host is None:
            # A key's line in a vars file is the same for every host; only inventory files, where
            # hosts carry inline vars, need the host in the key.
            parts = Path(source).parts
            per_host = self.per_host[source] = "group_vars" not in parts and "host_vars" not in parts
        key = (source, path, host_name if per_host else "")
        if key not in self.cache:
            self.cache[key] = locate(source, path, host_name)
        return self.cache[key]


def router_plan(inventory: Inventory, host: ResolvedHost) -> router.RouterPlan:
    """The plan of a router host over the inventory's fleet hosts, as the router role makes it
    from Ansible's variables. Raises RouterError."""
    settings = host.vars.get(router.VAR)
    groups = settings.get("groups") if isinstance(settings, dict) else None
    members = {}
    # Hosts with the same fleet variables have the same plan: each distinct set is planned once
    # (by the values' identities first, as _Verdicts does), which keeps 10,000 hosts fast.
    by_ids: dict[tuple, Any] = {}
    by_signature: dict[str, Any] = {}
    for other in inventory.hosts.values():
        if in_scope(other) and (not isinstance(groups, list) or set(groups) & set(other.groups)):
            fv = fleet_vars(other)
            ids = tuple((k, id(v)) for k, v in fv.items())
            if ids not in by_ids:
                signature = _signature(fv, False)
                if signature not in by_signature:
                    by_signature[signature] = router.member_plan(fv)
                by_ids[ids] = by_signature[signature]
            member = router.fleet_member(other.name, fv, other.groups, other.vars.get("ansible_host"), by_ids[ids])
            if member is not None:
                members[other.name] = member
    return router.plan_router(host.name, settings, members)


def _router_findings(inventory: Inventory, host: ResolvedHost, where: _Locator) -> list[Located]:
    """VF501 when a router host cannot route, VF502 for what surprises its clients; VF005, as
    on fleet hosts (a router takes part in site.yml's and the upgrade's batches too)."""
    found = [Located(v, *where(host, v.var)) for v in play_settings.check(fleet_vars(host), host.name)]
    try:
        plan = router_plan(inventory, host)
    except router.RouterError as exc:
        return found + [Located(Violation(router.RULE, ERROR, host.name, router.VAR, str(exc)), *where(host, router.VAR))]
    return found + [Located(Violation(router.MIXED_RULE, WARNING, host.name, router.VAR, text), *where(host, router.VAR))
                    for text in plan.warnings]


def lint_inventory(inventory: Inventory) -> tuple[list[Located], int]:
    """All violations of the inventory, located and sorted, and the number of fleet hosts checked."""
    verdicts = _Verdicts()
    where = _Locator(inventory)
    located: list[Located] = []
    left_out: list[str] = []
    checked = 0
    for name in sorted(inventory.hosts):
        host = inventory.hosts[name]
        if router.is_router_host(host.vars) and not in_scope(host):
            located += _router_findings(inventory, host, where)
            continue
        if not in_scope(host):
            left_out.append(name)
            found = membership.unprofiled(inventory, host)
            if found is not None:
                violation, source = found
                located.append(Located(violation, source or None, where.line(source, violation.var, name)))
            continue
        checked += 1
        fv = fleet_vars(host)
        for v in verdicts.get(fv, bool(host.encrypted)):
            v = Violation(v.rule, v.severity, name, v.var, v.message)
            located.append(Located(v, *where(host, v.var)))
        for path in host.encrypted:
            located.append(Located(encrypted_file_note(name, path, bool(fv.get("vllm_fleet_api_key"))), path, None))
    first_source = inventory.sources[0] if inventory.sources else None
    if left_out:
        located.append(Located(membership.left_out_note(left_out), first_source, None))
    for path in inventory.encrypted_sources:
        located.append(Located(Violation("VF003", INFO, "all", "hosts", f"{path} is encrypted with ansible-vault: "
                                         "lint cannot read the hosts it lists, so it checked none of them"), path, None))
    located.sort(key=Located.sort_key)
    return located, checked
