"""The one resolved view of a fleet host, from its `vllm_fleet_*` inventory variables.

Lint judges it, the Ansible roles render it (through the collection's filter plugin), and the
instance manifests written from it are what the smoke suite and the watchdog read. A host's
profile, instances, addresses and memory model are therefore decided here and nowhere else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from vllm_fleet.serving import addresses, instances
from vllm_fleet.serving.profiles import resolve_serving

DEFAULT_BIND_ADDRESS = addresses.LOOPBACK_V4


@dataclass
class InstancePlan:
    name: str
    gpus: list[int]
    # The port clients use (the proxy's, when proxied).
    port: int
    # `docker run --publish PUBLISH_HOST:PUBLISH_PORT:8000`: the bind address and port, or
    # loopback and the backend port behind the proxy.
    publish_host: str
    publish_port: int
    # What a client on the host itself uses (https through the proxy, when proxied), and where
    # vLLM itself answers on this host (the proxy's upstream; the watchdog's probe).
    url: str
    backend_url: str
    proxied: bool


@dataclass
class HostPlan:
    profile: str
    serving: dict[str, Any]
    gpu: dict[str, Any]
    unified_memory: bool
    cpu_arch: str | None
    driver_branch: int | None
    bind_address: str
    # Whether the bind address is loopback: anything else is reachable from other machines.
    loopback: bool
    api_key_set: bool
    instances: list[InstancePlan]
    # True when the inventory lists no instances and the default one was taken.
    default_instances: bool
    # rule id -> the reason the inventory gives for waiving it on this host.
    waivers: dict[str, str] = field(default_factory=dict)

    @property
    def tensor_parallel_size(self) -> int:
        return int(self.serving["serving"].get("tensor_parallel_size") or 1)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_fleet_host(hostvars: Mapping[str, Any]) -> bool:
    """A fleet host is one with a serving profile. Lint checks exactly these hosts and site.yml
    targets exactly these; any other host of the inventory (a bastion, a control plane) is left alone."""
    return "vllm_fleet_profile" in hostvars


def _secret_set(value: Any) -> bool:
    # A vault-encrypted value is set even though this code cannot read it.
    return value is not None and value != "" and value is not False


def _instance(inst: dict[str, Any], bind: str) -> InstancePlan:
    port = inst["port"]
    if addresses.proxied(bind):
        backend = addresses.backend_port(port)
        local = addresses.LOOPBACK_V4
        return InstancePlan(name=inst["name"], gpus=inst["gpus"], port=port, publish_host=local,
                            publish_port=backend, proxied=True,
                            url=addresses.probe_url(bind, port, "https"),
                            backend_url=addresses.probe_url(local, backend))
    url = addresses.probe_url(bind, port)
    return InstancePlan(name=inst["name"], gpus=inst["gpus"], port=port, publish_host=addresses.publish_host(bind),
                        publish_port=port, proxied=False, url=url, backend_url=url)


def plan_host(fleet_vars: Mapping[str, Any]) -> HostPlan:
    """The host's plan. Raises ProfileError (a sentence) when the profile cannot be resolved."""
    serving = resolve_serving(str(fleet_vars["vllm_fleet_profile"]), dict(fleet_vars.get("vllm_fleet_overrides") or {}))
    gpu = dict(fleet_vars.get("vllm_fleet_gpu") or {})
    bind = str(fleet_vars.get("vllm_fleet_bind_address") or DEFAULT_BIND_ADDRESS)
    tp = int(serving["serving"].get("tensor_parallel_size") or 1)
    listed = fleet_vars.get("vllm_fleet_instances")
    planned = [_instance(i, bind) for i in instances.host_instances(listed, tp)]
    return HostPlan(
        profile=serving["name"], serving=serving, gpu=gpu,
        unified_memory=bool(gpu.get("unified_memory", False)),
        cpu_arch=fleet_vars.get("vllm_fleet_cpu_arch"),
        driver_branch=fleet_vars.get("vllm_fleet_driver_branch"),
        bind_address=bind, loopback=addresses.is_loopback(bind), api_key_set=_secret_set(fleet_vars.get("vllm_fleet_api_key")),
        instances=planned, default_instances=not listed,
        waivers={str(k): str(v) for k, v in (fleet_vars.get("vllm_fleet_waivers") or {}).items()},
    )
