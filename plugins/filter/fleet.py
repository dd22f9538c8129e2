"""Jinja filters that hand the inventory contract to the roles through vllm-fleet's own code, so
that profiles, instances, addresses, arguments and preflight verdicts are decided once, shared
with `vllm-fleet lint` and the smoke suite.

Use them by their full names (vllm_fleet.fleet.plan, ...): Ansible resolves short filter names
only for its built-in and legacy plugins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.vllm_fleet.fleet.plugins.plugin_utils.package import vllm_fleet

NAMESPACE = "vllm_fleet_"


def _plain(value: Any) -> Any:
    """Ansible's lazily templated containers as plain Python data, for vllm_fleet's code (which
    copies and merges them). Inventory values are JSON-shaped, so JSON is the exact round trip."""
    return json.loads(json.dumps(value, default=str))


def _fleet_vars(hostvars: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(hostvars[k]) for k in list(hostvars) if str(k).startswith(NAMESPACE)}


def _host_plan(plan_dict: Mapping[str, Any]):
    from vllm_fleet.serving.host import HostPlan, InstancePlan

    data = _plain(plan_dict)
    data["instances"] = [InstancePlan(**i) for i in data["instances"]]
    return HostPlan(**data)


def plan(hostvars: Mapping[str, Any]) -> dict[str, Any]:
    """A host's variables (hostvars[inventory_hostname]) -> its plan: profile, resolved serving
    configuration, instances with their addresses, declared GPU, waivers (no secrets)."""
    vllm_fleet()
    from vllm_fleet.serving.host import plan_host
    from vllm_fleet.serving.profiles import ProfileError

    fleet = _fleet_vars(hostvars)
    if "vllm_fleet_profile" not in fleet:
        raise AnsibleFilterError("this host has no vllm_fleet_profile, so it is not a fleet host; "
                                 "add it to a group whose group_vars set one")
    try:
        return plan_host(fleet).as_dict()
    except ProfileError as exc:
        raise AnsibleFilterError(f"{exc} (run `vllm-fleet lint` on the inventory)") from None


def serve_args(serving_config: Mapping[str, Any]) -> list[str]:
    vllm_fleet()
    from vllm_fleet.serving.args import serve_args as render

    return render(_plain(serving_config))


def serve_env(serving_config: Mapping[str, Any]) -> dict[str, str]:
    vllm_fleet()
    from vllm_fleet.serving.args import serve_env as render

    return render(_plain(serving_config))


def image_ref(image: Mapping[str, Any], registry_mirror: str = "") -> str:
    vllm_fleet()
    from vllm_fleet.serving.image import image_ref as ref

    return ref(_plain(image), str(registry_mirror or ""))


def instance_name_valid(name: Any) -> bool:
    vllm_fleet()
    from vllm_fleet.serving.instances import valid_name

    return valid_name(name)


def manifest(plan_dict: Mapping[str, Any], name: str, image_ref: str, unit: str, container: str,
             api_key_file: str | None = None, ca_file: str | None = None) -> dict[str, Any]:
    """The instance manifest the vllm role writes to <config dir>/<name>.json."""
    vllm_fleet()
    from vllm_fleet.serving.manifest import instance_manifest

    return instance_manifest(_host_plan(plan_dict), str(name), image_ref=str(image_ref), unit=str(unit),
                             container=str(container), api_key_file=api_key_file or None,
                             ca_file=ca_file or None)


def preflight_problems(plan_dict: Mapping[str, Any], gpu_facts: Mapping[str, Any], free_disk_bytes: Any,
                       host: Mapping[str, Any]) -> list[str]:
    """Sentences saying why the host must stop before any download; empty when it may go on."""
    vllm_fleet()
    from vllm_fleet.rules.preflight import preflight_problems as judge

    return judge(_host_plan(plan_dict), _plain(gpu_facts), int(free_disk_bytes), _plain(host))


def drifted(inspect_results: list[Mapping[str, Any]], fingerprint_results: list[Mapping[str, Any]]) -> list[str]:
    """Instances whose running container started from other files than those on disk.

    Both arguments are loop results over the instances: `docker inspect <container>` and
    `vllm-run --fingerprint`. No container (inspect failed) is not drift: the start task starts
    it from the files on disk. A container without the label predates the fingerprint: drift."""
    found = []
    for inspected, fingerprint in zip(inspect_results or [], fingerprint_results or []):
        if inspected.get("rc") != 0 or fingerprint.get("rc") != 0:
            continue
        try:
            labels = json.loads(inspected["stdout"])[0]["Config"].get("Labels") or {}
        except (ValueError, LookupError, TypeError):
            continue
        if labels.get("io.vllm-fleet.files") != fingerprint["stdout"].strip():
            found.append(inspected["item"]["name"])
    return found


class FilterModule:
    def filters(self):
        return {
            "plan": plan,
            "serve_args": serve_args,
            "serve_env": serve_env,
            "image_ref": image_ref,
            "instance_name_valid": instance_name_valid,
            "manifest": manifest,
            "preflight_problems": preflight_problems,
            "drifted": drifted,
        }
