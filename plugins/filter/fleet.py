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
from ansible.utils.helpers import pct_to_int
from ansible_collections.vllm_fleet.fleet.plugins.plugin_utils import hostvars as hostvars_util
from ansible_collections.vllm_fleet.fleet.plugins.plugin_utils.package import vllm_fleet

_plain = hostvars_util.plain
_fleet_vars = hostvars_util.fleet_vars


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


# --- the router (router role; upgrade.yml drains by its server names) ----------------------------

def router_plan(hostvars: Mapping[str, Any], router_host: str, groups: Mapping[str, Any]) -> dict[str, Any]:
    """The router's listeners (one per served model) and their servers, from the fleet hosts of
    the groups router_host's vllm_fleet_router names: hostvars | router_plan(inventory_hostname, groups)."""
    vllm_fleet()
    from vllm_fleet.serving.router import RouterError

    try:
        return hostvars_util.router_plan(hostvars, str(router_host), groups)
    except RouterError as exc:
        raise AnsibleFilterError(f"{exc} (run `vllm-fleet lint` on the inventory)") from None


def router_manifest(router: Mapping[str, Any], bind_address: str, ca_file: str) -> dict[str, Any]:
    """The router's manifest (what its clients read) from its plan: router_plan | router_manifest(bind, ca)."""
    vllm_fleet()
    from vllm_fleet.serving.router import router_manifest as manifest

    return manifest(_plain(router), str(bind_address), str(ca_file))


def router_keys(hostvars: Mapping[str, Any], router: Mapping[str, Any]) -> dict[str, str]:
    """{backend: key} for each listener of a router plan whose hosts share one vllm_fleet_api_key
    (the router role refuses a listener left out: it checks one key per model)."""
    found = {}
    for li in router.get("listeners") or []:
        keys = {str(hostvars[h].get("vllm_fleet_api_key") or "") for h in {s["host"] for s in li["servers"]}}
        if len(keys) == 1 and "" not in keys:
            found[li["backend"]] = keys.pop()
    return found


def router_hosts(hostvars: Mapping[str, Any], groups: Mapping[str, Any]) -> list[str]:
    """The inventory's router hosts (those with vllm_fleet_router), whether or not this run's
    limit holds them: an upgrade drains its hosts on every router."""
    vllm_fleet()
    from vllm_fleet.serving.router import VAR

    return [name for name in groups.get("all", []) if VAR in hostvars[name]]


def router_host_servers(hostvars: Mapping[str, Any], router_host: str, host: str) -> list[dict[str, str]]:
    """[{backend, server}] of fleet host `host` on router `router_host` (what a drain takes out
    of rotation), from that host's own plan: hostvars | router_host_servers(router, host)."""
    vllm_fleet()
    from vllm_fleet.serving.router import RouterError, host_servers

    member = hostvars_util.fleet_member(hostvars, str(host))
    if member is None:
        return []
    try:
        return host_servers(str(router_host), hostvars_util.router_settings(hostvars, str(router_host)), member)
    except RouterError as exc:
        raise AnsibleFilterError(f"{exc} (run `vllm-fleet lint` on the inventory)") from None


def serial_batches(hosts: list[str], serial: Any) -> list[list[str]]:
    """The batches a play with `serial` makes of `hosts` (a count, a percentage or a list of
    them, the last repeated), as Ansible's PlaybookExecutor._get_serialized_batches makes them."""
    steps = list(serial) if isinstance(serial, (list, tuple)) else [serial]
    left, batches, step = list(hosts), [], 0
    while left:
        size = pct_to_int(steps[step], len(hosts))
        if size <= 0:
            size = len(left)
        batches.append(left[:size])
        left = left[size:]
        step = min(step + 1, len(steps) - 1)
    return batches


def router_full_drains(hostvars: Mapping[str, Any], groups: Mapping[str, Any], play_hosts: list[str],
                       serial: Any) -> list[str]:
    """Sentences, one per routed model that a batch of an upgrade or rollback of `play_hosts` with `serial`
    would leave with no server on some router (vllm_fleet.serving.router.full_drains):
    hostvars | router_full_drains(groups, ansible_play_hosts_all, serial)."""
    vllm_fleet()
    from vllm_fleet.serving.router import RouterError, full_drains

    batches = serial_batches([str(h) for h in play_hosts], _plain(serial))
    found = []
    for name in router_hosts(hostvars, groups):
        try:
            found += full_drains(name, hostvars_util.router_plan(hostvars, name, groups), batches)
        except RouterError as exc:
            raise AnsibleFilterError(f"{exc} (run `vllm-fleet lint` on the inventory)") from None
    return found


def router_sessions(show_stat: str, servers: list[Mapping[str, Any]]) -> int:
    """Requests in flight or queued on `servers`, from HAProxy's `show stat` answer."""
    vllm_fleet()
    from vllm_fleet.serving.router import sessions

    return sessions(str(show_stat), _plain(servers))


# --- verified releases and the upgrade lock (vllm role: verify-mark, previous, restore, lock) ----

def release_files(names: list[str], unit: str, wrapper: str, entrypoint: str, config_dir: str) -> list[dict[str, Any]]:
    """The files of a release of instances `names`: name in the kept files/, path, mode, instance."""
    vllm_fleet()
    from vllm_fleet.serving.release import ReleaseError
    from vllm_fleet.serving.release import release_files as files

    try:
        return files(_plain(names), unit=str(unit), wrapper=str(wrapper), entrypoint=str(entrypoint),
                     config_dir=str(config_dir))
    except ReleaseError as exc:
        raise AnsibleFilterError(str(exc)) from None


def release_review(names: list[str], markers: list[Mapping[str, Any]], kept: list[Mapping[str, Any]],
                   current: list[Mapping[str, Any]], inspected: list[Mapping[str, Any]] | None = None,
                   fingerprints: list[Mapping[str, Any]] | None = None, need_reload: list[Mapping[str, Any]] | None = None,
                   found: list[str] | None = None) -> dict[str, Any]:
    """A kept release against the host: problems, files, containers, changes, markers."""
    vllm_fleet()
    from vllm_fleet.serving.release import review_release

    return review_release(_plain(names), _plain(markers), _plain(kept), _plain(current),
                          None if inspected is None else _plain(inspected),
                          None if fingerprints is None else _plain(fingerprints),
                          None if need_reload is None else _plain(need_reload),
                          None if found is None else _plain(found))


def release_checksums(found: Mapping[str, Any], files: list[Mapping[str, Any]], directory: str | None = None) -> list[dict[str, Any]]:
    """The sha256 of each release file from one find result: its copy in `directory`, or the file on the host."""
    vllm_fleet()
    from vllm_fleet.serving.release import release_checksums as checksums

    return checksums(_plain(found), _plain(files), None if directory is None else str(directory))


def release_marker(manifest: Mapping[str, Any], instance: str, sums: list[Mapping[str, Any]], image_id: str,
                   at: str, by: str = "smoke") -> dict[str, Any]:
    """The verified-release marker of `instance` (written after its smoke run passed); `sums`:
    release_checksums of the kept copies."""
    vllm_fleet()
    from vllm_fleet.serving.release import ReleaseError
    from vllm_fleet.serving.release import release_marker as marker

    try:
        return marker(str(instance), _plain(manifest), _plain(sums), str(image_id or ""), str(at), str(by))
    except ReleaseError as exc:
        raise AnsibleFilterError(str(exc)) from None


def run_owner(purpose: str) -> dict[str, Any]:
    """This ansible-playbook run, as the host's upgrade lock records it."""
    vllm_fleet()
    from vllm_fleet.serving.runlock import run_owner as owner

    return owner(str(purpose))


def lock_text(owner: Mapping[str, Any]) -> str:
    vllm_fleet()
    from vllm_fleet.serving.runlock import lock_text as text

    return text(_plain(owner))


def lock_verdict(read: str, owner: Mapping[str, Any], stale_after_s: Any) -> dict[str, Any]:
    """Whether this run may take the host's upgrade lock (take, state, holder, why, expect)."""
    vllm_fleet()
    from vllm_fleet.serving.runlock import lock_verdict as verdict

    return verdict(str(read or ""), _plain(owner), float(stale_after_s))


class FilterModule:
    def filters(self):
        return {
            "plan": plan,
            "router_plan": router_plan,
            "router_hosts": router_hosts,
            "router_manifest": router_manifest,
            "router_keys": router_keys,
            "router_host_servers": router_host_servers,
            "router_full_drains": router_full_drains,
            "router_sessions": router_sessions,
            "serve_args": serve_args,
            "serve_env": serve_env,
            "image_ref": image_ref,
            "instance_name_valid": instance_name_valid,
            "manifest": manifest,
            "preflight_problems": preflight_problems,
            "drifted": drifted,
            "release_files": release_files,
            "release_checksums": release_checksums,
            "release_review": release_review,
            "release_marker": release_marker,
            "run_owner": run_owner,
            "lock_text": lock_text,
            "lock_verdict": lock_verdict,
        }
