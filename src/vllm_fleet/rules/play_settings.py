"""VF005: a play's batch size set where Ansible never reads it.

The playbooks' `serial` is `vllm_fleet_serial` (site.yml's stages) or `vllm_fleet_upgrade_serial`
(upgrade, rollback). Ansible templates a play's keywords before it picks a host, with the
variables of the play alone - extra variables (`-e`) and the play's own - never the inventory's
(ansible-core v2.19.14, lib/ansible/executor/playbook_executor.py: `get_vars(play=play)`, and
lib/ansible/vars/manager.py, which adds group and host variables only for a host). Set in
group_vars or host_vars such a variable changes no batch, and the upgrade's batch guard, which
reads host variables, would judge batches the play never makes: an error, before any host.
The schema says which variables these are: those of its `serial` type.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache
from typing import Any

from vllm_fleet.rules.base import ERROR, Violation
from vllm_fleet.rules.schema import host_schema

RULE = "VF005"
_SERIAL_TYPE = "#/$defs/serial"


@lru_cache(maxsize=1)
def play_keyword_vars() -> tuple[str, ...]:
    """The variables the playbooks template into a play's `serial`."""
    return tuple(sorted(name for name, prop in host_schema()["properties"].items()
                        if prop.get("$ref") == _SERIAL_TYPE))


def check(fleet_vars: dict[str, Any], host_name: str, extra_vars: Collection[str] = ()) -> list[Violation]:
    """A violation for each play keyword variable among a host's `fleet_vars` (a fleet host's or
    a router's) that did not come from the command line (`extra_vars`: the names given with -e,
    which win over the inventory's)."""
    found = []
    for var in play_keyword_vars():
        if var in fleet_vars and var not in extra_vars:
            value = fleet_vars[var]
            shown = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            found.append(Violation(RULE, ERROR, host_name, var, f"{var} is set in the inventory, where Ansible never reads a play's serial (it "
                               "templates play keywords from extra and play variables only): the plays it would "
                               f"batch keep their default. Give it on the command line (-e {var}={shown}) "
                               "and remove it from the inventory"))
    return found


__all__ = ["RULE", "check", "play_keyword_vars"]
