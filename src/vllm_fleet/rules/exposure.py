"""Rules about how a host exposes its instances: distinct names, ports and GPUs that exist,
and no server reachable from other machines without an API key."""

from __future__ import annotations

from typing import Iterator

from vllm_fleet.rules.base import ERROR, WARNING, Finding, HostView, Rule
from vllm_fleet.serving import addresses


def check_instances(h: HostView) -> Iterator[Finding]:
    tp = int(h.cfg["serving"].get("tensor_parallel_size") or 1)
    names: dict[str, int] = {}
    ports: dict[int, str] = {}
    gpus: dict[int, str] = {}
    for i, inst in enumerate(h.instances):
        where = f"vllm_fleet_instances[{i}]"
        if inst["name"] in names:
            yield (where + ".name", f"instances {names[inst['name']]} and {i} are both named {inst['name']!r}; "
                                    f"a name is a systemd unit and a container, so give each its own")
        names.setdefault(inst["name"], i)
        if inst["port"] in ports:
            yield where + ".port", f"instances {ports[inst['port']]!r} and {inst['name']!r} both use port {inst['port']}; give each its own port"
        ports.setdefault(inst["port"], inst["name"])
        for gpu in inst["gpus"]:
            if gpu in gpus:
                yield where + ".gpus", f"instances {gpus[gpu]!r} and {inst['name']!r} both use GPU {gpu}; one GPU serves one instance"
            gpus.setdefault(gpu, inst["name"])
            if gpu >= h.gpu_count:
                yield where + ".gpus", f"instance {inst['name']!r} uses GPU {gpu} but the host has {h.gpu_count} GPU(s) (0..{h.gpu_count - 1})"
        if len(inst["gpus"]) != tp:
            yield (where + ".gpus",
                   f"instance {inst['name']!r} has {len(inst['gpus'])} GPU(s) but tensor_parallel_size is {tp}; "
                   f"give it {tp} GPU(s) or change tensor_parallel_size")
    idle = h.gpu_count - len(gpus)
    if h.default_instances and idle > 0:
        yield ("vllm_fleet_instances",
               f"the host has {h.gpu_count} GPUs but the default instance 'main' serves on {len(gpus)} "
               f"(tensor_parallel_size {tp}); {idle} stay idle. List vllm_fleet_instances (one per GPU, or "
               f"tensor parallel over several) to use them", WARNING)


def check_proxy_ports(h: HostView) -> Iterator[Finding]:
    """Behind the proxy, vLLM listens on loopback at each port plus PROXY_BACKEND_OFFSET: that
    port must exist and must not be another instance's port."""
    if not addresses.proxied(h.bind_address):
        return
    public = {inst["port"]: inst["name"] for inst in h.instances}
    for i, inst in enumerate(h.instances):
        backend = addresses.backend_port(inst["port"])
        where = f"vllm_fleet_instances[{i}].port"
        if backend > addresses.HIGHEST_PORT:
            yield (where, f"instance {inst['name']!r} on {h.bind_address} is served through the proxy, and vLLM then "
                          f"listens on loopback at port {inst['port']} + {addresses.PROXY_BACKEND_OFFSET} = {backend}, "
                          f"above {addresses.HIGHEST_PORT}; use a port at or below "
                          f"{addresses.HIGHEST_PORT - addresses.PROXY_BACKEND_OFFSET}")
        elif backend in public:
            yield (where, f"vLLM of instance {inst['name']!r} listens behind the proxy on port {backend}, which is "
                          f"instance {public[backend]!r}'s port; move one of them")


def check_api_key(h: HostView) -> Iterator[Finding]:
    if not addresses.is_loopback(h.bind_address) and not h.api_key_set:
        yield ("vllm_fleet_api_key",
               f"the server binds {h.bind_address}, reachable from other machines, without an API key; set "
               f"vllm_fleet_api_key (from Ansible Vault) or bind 127.0.0.1")


RULES: tuple[Rule, ...] = (
    Rule("VF401", ERROR, "instances: distinct names, ports and GPUs, GPU count matches tensor parallel", check_instances),
    Rule("VF402", ERROR, "API key when binding a non-loopback address", check_api_key),
    Rule("VF403", ERROR, "ports the authenticating proxy needs", check_proxy_ports),
)
