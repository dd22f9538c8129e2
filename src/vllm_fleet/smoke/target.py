"""Where the smoke suite's expectations come from when they are not given as flags: an instance
manifest the vllm role wrote on the host (what the running server was deployed with), or an
inventory host (what lint resolves for it)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vllm_fleet.inventory.limit import LimitError, select_hosts
from vllm_fleet.smoke.runner import SmokeError, Target

# What the vllm role names an instance's unit and container by default (role variables
# vllm_unit_name and vllm_container_prefix); a manifest records the names actually used.
DEFAULT_UNIT_PREFIX = "vllm"
DEFAULT_CONTAINER_PREFIX = "vllm-"

# What the host-side checks' skip reason tells the user to pass, in this command's own terms
# (the suite's default names the suite's --host flag, which only --url mode has).
INVENTORY_HOST_HINT = ("host-side checks were not asked for: add --host-checks to check the unit, container, "
                       "GPUs and journal over ssh")
MANIFEST_HOST_HINT = ("host-side checks were not asked for: add --host-checks to check the unit, container, "
                      "GPUs and journal on this host")


def _temp_json(prefix: str, data: Any) -> str:
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    return path


def target_from_manifest(path: str, host_checks: bool) -> Target:
    """The target an instance manifest (/etc/vllm-fleet/<instance>.json) describes."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        expect = doc["expect"]
        # Through the proxy, as clients get it; /metrics from vLLM itself (the proxy may keep it).
        t = Target(url=doc["url"], model=doc["model"]["served_name"], max_model_len=int(doc["max_model_len"]),
                   vllm_version=doc.get("vllm_version") or None, api_key_file=doc.get("api_key_file"),
                   ca_file=doc.get("ca_file"), metrics_url=doc.get("backend_url"),
                   expect_tools=bool(expect.get("tools")), expect_spec_decode=bool(expect.get("spec_decode")),
                   expect_proxy=bool(doc.get("proxied")),
                   long_prompt_ratio=expect.get("long_prompt_ratio"), timeout=expect.get("request_timeout_s"),
                   host_hint=MANIFEST_HOST_HINT)
        if host_checks:
            t.host, t.unit, t.container = "local://", doc["unit"], doc["container"]
            t.image_digest = doc["image"]["digest"]
            t.expected_args_file = _temp_json("vllm-fleet-args-", doc["serve_args"])
            t.temp_files.append(t.expected_args_file)
    except OSError as exc:
        raise SmokeError(f"cannot read the instance manifest {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise SmokeError(f"{path} is not an instance manifest written by the vllm role ({exc!r})") from None
    return t


def _render(value: Any, vars_: dict[str, Any], depth: int = 5) -> Any:
    """Resolve `{{ var }}` indirections (e.g. vllm_fleet_api_key: "{{ vault_key }}") the way a
    play would see them, from the host's own variables. Vault values stay opaque."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    while isinstance(value, str) and "{{" in value and depth > 0:
        try:
            value = env.from_string(value).render(vars_)
        except jinja2.TemplateError as exc:
            raise SmokeError(f"cannot resolve {value!r} from the inventory ({exc}); pass --api-key-file") from None
        depth -= 1
    return value


@dataclass
class InventoryTarget:
    """One instance of one inventory host: its Target, or why it cannot be checked."""

    host: str
    instance: str
    target: Target | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.host}/{self.instance}"


@dataclass
class InventorySelection:
    targets: list[InventoryTarget]
    # (host, why it is not checked): not a fleet host, or without the --instance asked for.
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def temp_files(self) -> list[str]:
        return [f for it in self.targets if it.target for f in it.target.temp_files]


def _load(paths: list[str]) -> Any:
    from vllm_fleet.inventory import InventoryError, load_inventory

    try:
        return load_inventory(paths)
    except InventoryError as exc:
        raise SmokeError(str(exc)) from None


def _plan(host: str, vars_: dict[str, Any]) -> Any:
    from vllm_fleet.serving.host import plan_host
    from vllm_fleet.serving.profiles import ProfileError

    try:
        return plan_host(vars_)
    except ProfileError as exc:
        raise SmokeError(f"host {host!r}: {exc} (`vllm-fleet lint` checks the whole inventory)") from None


def select_inventory_targets(paths: list[str], limit: str, instance: str | None,
                             host_checks: bool) -> InventorySelection:
    """Every instance (or the one named) of every fleet host the Ansible host pattern `limit`
    selects, in inventory order. SmokeError when nothing is left to check."""
    from vllm_fleet.serving.host import is_fleet_host

    inventory = _load(paths)
    try:
        hosts = select_hosts(inventory.hosts, limit)
    except LimitError as exc:
        raise SmokeError(f"-l {limit!r}: {exc}") from None
    selection = InventorySelection(targets=[])
    for host in hosts:
        vars_ = inventory.hosts[host].vars
        if not is_fleet_host(vars_):
            selection.skipped.append((host, "no vllm_fleet_profile, so not a fleet host"))
            continue
        try:
            plan = _plan(host, vars_)
        except SmokeError as exc:
            # One host's broken profile must not hide the others' results; it counts as unchecked.
            selection.targets.append(InventoryTarget(host, instance or "*", error=str(exc)))
            continue
        names = [i.name for i in plan.instances]
        if instance is not None and instance not in names:
            selection.skipped.append((host, f"no instance {instance!r} (its instances: {', '.join(names)})"))
            continue
        for inst in plan.instances:
            if instance is None or inst.name == instance:
                it = InventoryTarget(host, inst.name)
                try:
                    it.target = _instance_target(paths, host, vars_, plan, inst, host_checks)
                except SmokeError as exc:
                    it.error = str(exc)
                selection.targets.append(it)
    if not selection.targets:
        why = "; ".join(f"{h}: {reason}" for h, reason in selection.skipped[:10])
        raise SmokeError(f"-l {limit!r} selects {len(hosts)} host(s) but no instance to check ({why})")
    return selection


def target_from_inventory(paths: list[str], host: str, instance: str | None, host_checks: bool) -> Target:
    """The target of one instance (default: the first) of one inventory host."""
    from vllm_fleet.serving.host import is_fleet_host

    inventory = _load(paths)
    if host not in inventory.hosts:
        raise SmokeError(f"host {host!r} is not in the inventory {', '.join(paths)}")
    vars_ = inventory.hosts[host].vars
    if not is_fleet_host(vars_):
        raise SmokeError(f"host {host!r} has no vllm_fleet_profile; it is not a fleet host")
    plan = _plan(host, vars_)
    if instance is None:
        inst = plan.instances[0]
    else:
        inst = next((i for i in plan.instances if i.name == instance), None)
        if inst is None:
            raise SmokeError(f"the host has no instance {instance!r}; its instances are "
                             f"{', '.join(i.name for i in plan.instances)}")
    return _instance_target(paths, host, vars_, plan, inst, host_checks)


def _instance_target(paths: list[str], host: str, vars_: dict[str, Any], plan: Any, inst: Any,
                     host_checks: bool) -> Target:
    from vllm_fleet.serving.args import serve_args
    from vllm_fleet.serving.instances import container_name, unit_name

    cfg = plan.serving
    serving, smoke_cfg = cfg["serving"], cfg.get("smoke") or {}
    address = vars_.get("ansible_host") or host
    key = _render(vars_.get("vllm_fleet_api_key"), vars_)
    if key is not None and not isinstance(key, str):
        print(f"vllm-fleet: {host}: vllm_fleet_api_key is vault-encrypted here; pass --api-key-file to check the key",
              file=sys.stderr)
    # An instance on any address but loopback is served through the proxy, with TLS.
    t = Target(
        url=f"{'https' if inst.proxied else 'http'}://{address}:{inst.port}", model=cfg["model"]["id"],
        max_model_len=int(serving["max_model_len"]), vllm_version=str(cfg["image"]["vllm_version"]),
        api_key_file=None,
        expect_tools=bool(serving.get("enable_auto_tool_choice")),
        expect_spec_decode=serving.get("speculative_config") is not None,
        expect_proxy=inst.proxied,
        long_prompt_ratio=smoke_cfg.get("long_prompt_ratio"), timeout=smoke_cfg.get("request_timeout_s"),
        host_hint=INVENTORY_HOST_HINT,
    )
    if isinstance(key, str) and key:
        fd, t.api_key_file = tempfile.mkstemp(prefix="vllm-fleet-key-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key)
        t.temp_files.append(t.api_key_file)
    if host_checks:
        # Through Ansible itself, so the checks reach the host exactly as the play did (user,
        # key, port, ssh arguments and host-key policy all come from the inventory and config).
        t.host = f"ansible://{host}?ansible_inventory={os.path.abspath(paths[0])}"
        t.unit = unit_name(DEFAULT_UNIT_PREFIX, inst.name)
        t.container = container_name(DEFAULT_CONTAINER_PREFIX, inst.name)
        t.image_digest = cfg["image"]["digest"]
        t.expected_args_file = _temp_json("vllm-fleet-args-", serve_args(cfg))
        t.temp_files.append(t.expected_args_file)
    return t
