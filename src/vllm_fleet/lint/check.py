"""One fleet host's variables judged: the schema (VF001), then every serving rule whose inputs are
sound, on a plan built from the valid parts; notes (VF003) for values only Ansible can know; play
keywords the inventory cannot set (VF005).

The Ansible collection's validate action calls `check_fleet_vars` with the values Ansible
resolved; lint calls it with the inventory's own.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from vllm_fleet.lint import inputs
from vllm_fleet.lint.unknown import SECRETS, Unknown, find_unknown
from vllm_fleet.rules import INFO, RULES, HostView, Violation, play_settings, run_rules, schema
from vllm_fleet.rules.base import ERROR
from vllm_fleet.rules.schema import OVERRIDES, UNKNOWN_KEY, Path
from vllm_fleet.serving import profiles
from vllm_fleet.serving.host import plan_host
from vllm_fleet.serving.profiles import ProfileError

SCHEMA_RULE = "VF001"
UNPROFILED_RULE = "VF002"
UNKNOWN_RULE = "VF003"


class PossiblySet:
    """Stands for a secret that a vault-encrypted vars file may set: set, as far as lint knows."""

    def __repr__(self) -> str:
        return "<possibly set in an encrypted file>"


POSSIBLY_SET = PossiblySet()


def check_fleet_vars(fv: dict[str, Any], host_name: str, *, encrypted: bool = False,
                     extra_vars: Collection[str] = ()) -> list[Violation]:
    """Every problem of one host's vllm_fleet_* variables. `encrypted`: a vault-encrypted vars
    file applies to the host, so a secret it does not show may still be set there. `extra_vars`:
    the names among them the run was given with -e (site.yml's validation; lint reads only the
    inventory)."""
    unknown = find_unknown(fv)
    problems = schema.check_host(fv, [u.path for u in unknown])
    found = [Violation(SCHEMA_RULE, ERROR, host_name, p.var, p.message) for p in problems]
    unusable: set[Path] = {p.path for p in problems if p.kind != UNKNOWN_KEY}
    unusable |= {u.path for u in unknown if not u.secret}
    usable = inputs.prune(fv, unusable | {p.path for p in problems})
    if encrypted and not usable.get("vllm_fleet_api_key"):
        usable["vllm_fleet_api_key"] = POSSIBLY_SET
    if inputs.PROFILE in unusable or usable.get("vllm_fleet_profile") not in profiles.profile_names():
        # Only rules that never read the profile can run; any profile makes a plan for them.
        unusable.add(inputs.PROFILE)
        usable["vllm_fleet_profile"] = profiles.profile_names()[0]
    try:
        plan = plan_host(usable)
    except ProfileError as exc:  # the schema names bad image/model names first; this is a backstop
        found.append(Violation(SCHEMA_RULE, ERROR, host_name, OVERRIDES, str(exc)))
        unusable.add((OVERRIDES,))
        usable.pop(OVERRIDES, None)
        plan = plan_host(usable)
    runnable = [rule for rule in RULES if not inputs.blocked(rule.id, unusable)]
    found += run_rules(HostView.declared(host_name, plan), runnable)
    found += [_note(u, host_name) for u in unknown]
    found += play_settings.check(fv, host_name, extra_vars)
    return found


def _note(unknown: Unknown, host_name: str) -> Violation:
    var = schema.format_path(unknown.path)
    if unknown.secret:
        judged = "lint counts it as set (it never reads a secret)"
    else:
        skipped = inputs.readers(unknown.path, [rule.id for rule in RULES])
        judged = "lint skipped the schema's check of it" + (f" and {', '.join(skipped)}, which read it" if skipped else "")
    return Violation(UNKNOWN_RULE, INFO, host_name, var,
                     f"{var} is {unknown.describe()}, so its value is known only when Ansible runs the play; {judged}")


def encrypted_file_note(host_name: str, path: str, api_key_shown: bool) -> Violation:
    """The note for a vault-encrypted vars file that applies to a host."""
    if api_key_shown:
        assumed = "the variables lint can read are checked as they are"
        var = "vllm_fleet_*"
    else:
        assumed = ("it treats vllm_fleet_api_key as possibly set there (so no VF402), and checks the variables "
                   "it can read as they are")
        var = "vllm_fleet_api_key"
    return Violation(UNKNOWN_RULE, INFO, host_name, var,
                     f"{path} is encrypted with ansible-vault, so lint cannot know which variables it sets; {assumed}")


__all__ = ["POSSIBLY_SET", "SCHEMA_RULE", "SECRETS", "UNKNOWN_RULE", "UNPROFILED_RULE", "check_fleet_vars",
           "encrypted_file_note"]
