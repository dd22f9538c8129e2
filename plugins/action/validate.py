"""Action plugin vllm_fleet.fleet.validate: hold every host of the play to lint's schema and
rules, in-process, on the variables Ansible itself resolved (vault decrypted, templates rendered)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars
from ansible_collections.vllm_fleet.fleet.plugins.plugin_utils import hostvars as hostvars_util
from ansible_collections.vllm_fleet.fleet.plugins.plugin_utils.package import vllm_fleet

NAMESPACE = "vllm_fleet_"
UNRESOLVED_RULE = "VF004"


def _line(host: str, v: Any) -> str:
    """One problem as the task's message lists it (v: a vllm_fleet.rules Violation)."""
    return f"host={host} var={v.var}: {v.severity} {v.rule}: {v.message}"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("hosts", "strict"))
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        vllm_fleet()
        from vllm_fleet.lint.run import check_fleet_vars
        from vllm_fleet.rules import ERROR, INFO, WARNING, play_settings
        from vllm_fleet.serving.host import is_fleet_host
        from vllm_fleet.serving.router import MIXED_RULE
        from vllm_fleet.serving.router import RULE as ROUTER_RULE
        from vllm_fleet.serving.router import VAR as ROUTER_VAR
        from vllm_fleet.serving.router import RouterError

        hosts = self._task.args.get("hosts") or task_vars.get("ansible_play_hosts_all") or []
        strict = bool(self._task.args.get("strict", False))
        hostvars = task_vars["hostvars"]
        # What -e gave, parsed as Ansible parses it: a play keyword set there is
        # where Ansible reads it; set in the inventory it is not (VF005).
        extra_vars = frozenset(k for k in load_extra_vars(self._loader) if str(k).startswith(NAMESPACE))
        fleet_hosts, router_hosts, lines, errors, warnings, verdicts = [], [], [], 0, 0, {}
        for host in hosts:
            fleet, unresolved = {}, []
            for key in [k for k in list(hostvars[host]) if str(k).startswith(NAMESPACE)]:
                try:
                    fleet[key] = hostvars[host][key]
                except AnsibleError as exc:
                    unresolved.append(f"host={host} var={key}: error {UNRESOLVED_RULE}: it cannot be resolved "
                                      f"({exc.message}); define what it refers to (a vault file for secrets) or remove it")
            if ROUTER_VAR in fleet and not is_fleet_host(fleet) and not unresolved:
                # A router: its fleet hosts are planned as the router role plans them, whether or
                # not they are in this run (`-l router` reconfigures the routers alone).
                router_hosts.append(host)
                misplaced = play_settings.check(fleet, host, extra_vars)
                errors += len(misplaced)
                lines += [_line(host, v) for v in misplaced]
                try:
                    plan = hostvars_util.router_plan(hostvars, host, task_vars.get("groups") or {})
                except RouterError as exc:
                    errors += 1
                    lines.append(f"host={host} var={ROUTER_VAR}: error {ROUTER_RULE}: {exc}")
                    continue
                warnings += len(plan["warnings"])
                lines += [f"host={host} var={ROUTER_VAR}: warning {MIXED_RULE}: {text}" for text in plan["warnings"]]
                continue
            if not is_fleet_host(fleet) and not unresolved:
                continue
            fleet_hosts.append(host)
            if unresolved:
                errors += len(unresolved)
                lines += unresolved
                continue
            # Hosts of one group usually share every value: judge each distinct set once.
            key = repr(sorted((k, repr(v)) for k, v in fleet.items()))
            if key not in verdicts:
                verdicts[key] = check_fleet_vars(fleet, "", extra_vars=extra_vars)
            for v in verdicts[key]:
                if v.severity == INFO:
                    continue
                errors += v.severity == ERROR
                warnings += v.severity == WARNING
                lines.append(_line(host, v))
        failed = errors > 0 or (strict and warnings > 0)
        summary = (f"{len(fleet_hosts)} fleet host(s) and {len(router_hosts)} router(s) of {len(hosts)} checked: {errors} error(s), {warnings} warning(s)"
                   + ("" if not failed else "; fix the inventory (`vllm-fleet lint` shows file and line)"))
        result.update(changed=False, failed=failed, fleet_hosts=fleet_hosts, router_hosts=router_hosts, problems=lines,
                      msg="\n".join(lines + [summary]) if lines else summary)
        return result
