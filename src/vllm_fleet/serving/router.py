"""The fleet's router: one OpenAI-compatible address per model in front of the fleet's instances.

A router host is one with `vllm_fleet_router`; it routes to every instance of the fleet hosts in
the groups it names (all fleet hosts by default). This module decides which servers those are,
their names and where the router reaches them: the router role renders HAProxy's configuration
from it, lint checks it, and the upgrade playbook drains a host by the server names it returns.
The role also writes the plan's client side as the router's manifest (router_manifest), which
clients read instead of recomputing the plan.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from vllm_fleet.resources import schema_json
from vllm_fleet.serving.addresses import probe_url
from vllm_fleet.serving.args import served_model_name
from vllm_fleet.serving.host import HostPlan, plan_host
from vllm_fleet.serving.profiles import ProfileError

VAR = "vllm_fleet_router"
# Lint's and validate.yml's rule ids: a router that cannot route (error), one whose hosts
# serve a model with different context lengths (warning).
RULE = "VF501"
MIXED_RULE = "VF502"
# Where clients reach the router when the inventory names no port (TLS, so not 443's privilege).
DEFAULT_PORT = 8443
# HAProxy names backends and servers with letters, digits and - _ . :
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


class RouterError(ValueError):
    """The router's inventory cannot be routed; the message says what to change."""


def is_router_host(hostvars: Mapping[str, Any]) -> bool:
    return VAR in hostvars


@dataclass(frozen=True)
class FleetMember:
    """A fleet host as the router sees it: its plan, its groups and its inventory address."""

    name: str
    plan: HostPlan
    groups: tuple[str, ...]
    # ansible_host, when the inventory sets one (else the router uses the host's name).
    ansible_host: str | None = None


@dataclass
class RouterServer:
    name: str  # HAProxy's server name: host and instance
    host: str
    instance: str
    address: str
    port: int
    # The instance is behind its host's authenticating proxy (TLS and the API key).
    tls: bool


@dataclass
class RouterListener:
    model: str  # the served model name clients ask for
    port: int
    backend: str  # HAProxy's backend name
    servers: list[RouterServer] = field(default_factory=list)


@dataclass
class RouterPlan:
    groups: list[str] | None
    listeners: list[RouterListener]
    # Sentences on what works but surprises clients (MIXED_RULE).
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def member_plan(fleet_vars: Mapping[str, Any]) -> HostPlan | None:
    """A fleet host's plan; None when its profile cannot be resolved (lint and validate.yml
    report that on the host itself)."""
    try:
        return plan_host(fleet_vars)
    except ProfileError:
        return None


def fleet_member(name: str, fleet_vars: Mapping[str, Any], groups: Any, ansible_host: Any = None,
                 plan: HostPlan | None = None) -> FleetMember | None:
    """A fleet host as a router sees it (`plan`: its plan, when already made); None when its
    profile cannot be resolved."""
    plan = plan or member_plan(fleet_vars)
    if plan is None:
        return None
    return FleetMember(name=name, plan=plan, groups=tuple(groups or ()),
                       ansible_host=str(ansible_host) if ansible_host else None)


def safe_name(text: str) -> str:
    return _UNSAFE.sub("_", text)


def backend_name(model: str) -> str:
    return safe_name(f"model_{model}")


def server_name(host: str, instance: str) -> str:
    return safe_name(f"{host}_{instance}")


def _routes(settings: Mapping[str, Any], member: FleetMember) -> bool:
    groups = settings.get("groups")
    return groups is None or bool(set(groups) & set(member.groups))


def host_servers(router_name: str, router: Any, member: FleetMember) -> list[dict[str, str]]:
    """[{backend, server}] of one fleet host on one router: what a drain takes out of rotation.
    The names plan_router gives, from the host's own plan: an upgrade drains each host without
    planning the whole fleet again."""
    settings = _settings(router_name, router)
    if not _routes(settings, member) or reach_address(member) is None:
        return []
    backend = backend_name(served_model_name(member.plan.serving))
    return [{"backend": backend, "server": server_name(member.name, inst.name)} for inst in member.plan.instances]


def reach_address(member: FleetMember) -> str | None:
    """Where another machine reaches the host's instances; None when they listen on loopback only."""
    bind = member.plan.bind_address
    if member.plan.loopback:
        return None
    if bind in ("0.0.0.0", "::"):
        return str(member.ansible_host or member.name)
    return bind


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    # Read once: an upgrade asks for each host's servers on each router.
    return Draft202012Validator(schema_json("router.schema.json"))


def _settings(name: str, router: Any) -> Mapping[str, Any]:
    if router is None:
        return {}
    error = best_match(_validator().iter_errors(router))
    if error is not None:
        where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise RouterError(f"{VAR}{where} of router {name}: {error.message}")
    return router


def plan_router(name: str, router: Any, fleet: Mapping[str, FleetMember]) -> RouterPlan:
    """The router's listeners, one per served model, each with the servers of its instances.

    Raises RouterError (a sentence naming the variable to change) when the router cannot work:
    no fleet host in its groups, a host whose instances listen on loopback only, several models
    without a port each, two listeners on one port.
    """
    settings = _settings(name, router)
    groups = settings.get("groups")
    routed = [m for m in fleet.values() if _routes(settings, m)]
    where = f"the groups {', '.join(groups)}" if groups is not None else "the inventory"
    if not routed:
        raise RouterError(f"router {name} has no fleet host to route to: {where} hold(s) no host with a "
                          f"vllm_fleet_profile; name the groups of serving hosts in {VAR}.groups")
    by_model: dict[str, list[RouterServer]] = {}
    limits: dict[str, dict[int, list[str]]] = {}
    for member in sorted(routed, key=lambda m: m.name):
        address = reach_address(member)
        if address is None:
            raise RouterError(
                f"router {name} cannot reach {member.name}: its instances listen on {member.plan.bind_address} only. "
                f"Set vllm_fleet_bind_address (with vllm_fleet_api_key) for it, or leave its groups out of {VAR}.groups")
        model = served_model_name(member.plan.serving)
        limit = int(member.plan.serving["serving"].get("max_model_len") or 0)
        limits.setdefault(model, {}).setdefault(limit, []).append(member.name)
        for inst in member.plan.instances:
            by_model.setdefault(model, []).append(RouterServer(
                name=server_name(member.name, inst.name), host=member.name, instance=inst.name,
                address=address, port=inst.port, tls=inst.proxied))
    ports = dict(settings.get("ports") or {})
    if len(by_model) > 1:
        missing = sorted(m for m in by_model if m not in ports)
        if missing:
            raise RouterError(f"router {name} routes {len(by_model)} models ({', '.join(sorted(by_model))}), each on its "
                              f"own port: give {', '.join(missing)} a port in {VAR}.ports")
    default_port = int(settings.get("port") or DEFAULT_PORT)
    listeners = [RouterListener(model=m, port=int(ports.get(m, default_port)), backend=backend_name(m),
                                servers=servers) for m, servers in sorted(by_model.items())]
    seen: dict[int, str] = {}
    for li in listeners:
        if li.port in seen:
            raise RouterError(f"router {name} would serve {seen[li.port]} and {li.model} on one port, {li.port}; "
                              f"give each its own in {VAR}.ports")
        seen[li.port] = li.model
    warnings = [
        f"router {name} sends {model} to hosts with different max_model_len ("
        + "; ".join(f"{limit}: {', '.join(hosts)}" for limit, hosts in sorted(by_limit.items()))
        + f"): a request longer than {min(by_limit)} tokens fails or not depending on the host it reaches. "
          "Give them one max_model_len (vllm_fleet_overrides), or route them in separate routers"
        for model, by_limit in sorted(limits.items()) if len(by_limit) > 1]
    return RouterPlan(groups=list(groups) if groups is not None else None, listeners=listeners, warnings=warnings)


MANIFEST_SCHEMA_VERSION = 1


def router_manifest(plan: Mapping[str, Any], bind_address: str, ca_file: str) -> dict[str, Any]:
    """What a client of the router needs, from its plan (RouterPlan.as_dict()): per model, the
    port and the URL on the router host itself (as an instance's manifest gives it: another
    machine uses the router's own address with that port), the certificate that verifies it,
    and the servers behind it. The router role writes it to router_manifest_path."""
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "ca_file": ca_file,
        "listeners": [{"model": li["model"], "port": int(li["port"]),
                       "url": probe_url(bind_address, int(li["port"]), "https"),
                       "backend": li["backend"], "servers": [s["name"] for s in li.get("servers") or []]}
                      for li in plan.get("listeners") or []],
    }


# What lifts the upgrade's refusal of a batch that drains every server of a routed model.
ALLOW_FULL_DRAIN = "vllm_fleet_upgrade_allow_full_drain"


def full_drains(router_name: str, plan: Mapping[str, Any], batches: Sequence[Collection[str]]) -> list[str]:
    """Sentences, one per routed model that one of an upgrade's `batches` (host names) would leave
    with no server on this router (plan: RouterPlan.as_dict()): the batch holds every host behind
    the model. A model behind one host is left out: no batch size keeps it serving through its
    host's restart, so refusing would only stop its upgrade."""
    found = []
    for li in plan.get("listeners") or []:
        hosts = sorted({s["host"] for s in li.get("servers") or []})
        if len(hosts) < 2:
            continue
        batch = next((b for b in batches if set(hosts) <= set(b)), None)
        if batch is not None:
            found.append(
                f"a batch of {len(batch)} hosts ({', '.join(batch)}) holds every host behind {li['model']} on "
                f"router {router_name} ({', '.join(hosts)}): the router would have no server for it while they "
                f"restart. Take fewer than {len(hosts)} hosts a batch (vllm_fleet_upgrade_serial), route the "
                f"model to more hosts, or accept the outage with -e {ALLOW_FULL_DRAIN}=true")
    return found


def sessions(show_stat: str, servers: list[Mapping[str, str]]) -> int:
    """Requests in flight or queued on `servers` ([{backend, server}]), from the CSV HAProxy's
    runtime API answers to `show stat` (columns qcur and scur). A server it does not list counts
    as none: it cannot be carrying requests."""
    lines = show_stat.lstrip("# ").splitlines()
    wanted = {(s["backend"], s["server"]) for s in servers}
    total = 0
    for row in csv.DictReader(lines):
        if (row.get("pxname"), row.get("svname")) in wanted:
            total += int(row.get("qcur") or 0) + int(row.get("scur") or 0)
    return total
