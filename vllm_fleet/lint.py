"""`vllm-fleet lint`: every problem of an inventory at once, each naming host, variable and rule.

Hosts with the same fleet variables get the same verdict, so each distinct set is checked once;
that is what keeps 10,000 hosts fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from vllm_fleet import checks, schema
from vllm_fleet.checks import ERROR, INFO, WARNING, HostView, Violation
from vllm_fleet.inventory import Inventory, ResolvedHost, locate
from vllm_fleet.profiles import ProfileError, catalogue, resolve_serving

SCHEMA_RULE = "VF001"
EXIT_CLEAN, EXIT_VIOLATIONS, EXIT_UNREADABLE = 0, 1, 2


@dataclass
class Located:
    violation: Violation
    file: str | None
    line: int | None

    def sort_key(self) -> tuple:
        v = self.violation
        return (self.file or "~", self.line or 0, v.host, checks.SEVERITY_ORDER[v.severity], v.rule, v.var, v.message)

    def as_dict(self) -> dict[str, Any]:
        return {**self.violation.as_dict(), "file": self.file, "line": self.line}


def fleet_vars(host: ResolvedHost) -> dict[str, Any]:
    return {k: v for k, v in host.vars.items() if k.startswith(schema.NAMESPACE)}


def in_scope(host: ResolvedHost) -> bool:
    """Fleet hosts: those with a vllm_fleet_* variable or in a group named after a profile."""
    names = set(catalogue()["profiles"])
    return any(k.startswith(schema.NAMESPACE) for k in host.vars) or bool(names & set(host.groups))


def _view(name: str, fv: dict[str, Any], cfg: dict[str, Any]) -> HostView:
    gpu = fv["vllm_fleet_gpu"]
    tp = int(cfg["serving"].get("tensor_parallel_size") or 1)
    return HostView(
        name=name,
        cfg=cfg,
        compute_capability=gpu["compute_capability"],
        gpu_memory_mib=gpu["memory_mib"],
        gpu_count=gpu["count"],
        cpu_arch=fv["vllm_fleet_cpu_arch"],
        driver_branch=fv["vllm_fleet_driver_branch"],
        instances=fv.get("vllm_fleet_instances") or checks.default_instances(tp),
        bind_address=str(fv.get("vllm_fleet_bind_address", "127.0.0.1")),
        api_key_set=bool(fv.get("vllm_fleet_api_key")),
        lab_standin=bool(fv.get("vllm_fleet_lab_standin")),
    )


def check_fleet_vars(fv: dict[str, Any], host_name: str) -> list[Violation]:
    """Schema errors, then (when the variables are sound enough to resolve) the semantic rules."""
    found = [Violation(SCHEMA_RULE, ERROR, host_name, var, msg) for var, msg in schema.validate_host(fv)]
    broken = {v.var.split(".")[0].split("[")[0] for v in found}
    needed = {"vllm_fleet_profile", "vllm_fleet_overrides", "vllm_fleet_gpu", "vllm_fleet_cpu_arch",
              "vllm_fleet_driver_branch", "vllm_fleet_instances"}
    if broken & needed or not needed - {"vllm_fleet_overrides", "vllm_fleet_instances"} <= set(fv):
        return found
    try:
        cfg = resolve_serving(fv["vllm_fleet_profile"], fv.get("vllm_fleet_overrides") or {})
    except ProfileError as exc:
        return found + [Violation(SCHEMA_RULE, ERROR, host_name, "vllm_fleet_overrides", str(exc))]
    return found + checks.run_rules(_view(host_name, fv, cfg))


def _signature(fv: dict[str, Any]) -> str:
    return json.dumps(fv, sort_keys=True, default=repr)


def lint_inventory(inventory: Inventory) -> tuple[list[Located], int]:
    """All violations of the inventory, located and sorted, and the number of hosts checked."""
    verdicts: dict[str, list[Violation]] = {}
    line_cache: dict[tuple[str, str, str], int | None] = {}
    located: list[Located] = []
    checked = 0
    for name in sorted(inventory.hosts):
        host = inventory.hosts[name]
        if not in_scope(host):
            continue
        checked += 1
        fv = fleet_vars(host)
        key = _signature(fv)
        if key not in verdicts:
            verdicts[key] = check_fleet_vars(fv, "")
        for v in verdicts[key]:
            v = Violation(v.rule, v.severity, name, v.var, v.message)
            top = v.var.split(".")[0].split("[")[0]
            source = host.sources.get(top) or host.sources.get("vllm_fleet_profile")
            line = None
            if source and not source.startswith("<"):
                var = top if top in host.sources else "vllm_fleet_profile"
                # A key's line in a vars file is the same for every host; only inventory
                # files, where hosts carry inline vars, need the host in the key.
                per_host = not any(d in Path(source).parts for d in ("group_vars", "host_vars"))
                cache_key = (source, var, name if per_host else "")
                if cache_key not in line_cache:
                    line_cache[cache_key] = locate(source, var, name)
                line = line_cache[cache_key]
            located.append(Located(v, source, line))
    located.sort(key=Located.sort_key)
    return located, checked


def exit_code(found: Iterable[Located], strict: bool) -> int:
    failing = {ERROR, WARNING} if strict else {ERROR}
    return EXIT_VIOLATIONS if any(f.violation.severity in failing for f in found) else EXIT_CLEAN


def visible(found: list[Located], show_info: bool) -> list[Located]:
    return found if show_info else [f for f in found if f.violation.severity != INFO]


def format_text(found: list[Located], checked: int, seconds: float) -> str:
    lines = []
    for f in found:
        v = f.violation
        where = f"{f.file}:{f.line}" if f.file and f.line else (f.file or "<inventory>")
        lines.append(f"{where}: {v.severity} {v.rule} host={v.host} var={v.var}: {v.message}")
    counts = {s: sum(1 for f in found if f.violation.severity == s) for s in (ERROR, WARNING, INFO)}
    lines.append(
        f"{checked} host(s) checked in {seconds:.2f} s: {counts[ERROR]} error(s), {counts[WARNING]} warning(s)"
        + (f", {counts[INFO]} note(s)" if counts[INFO] else "")
    )
    return "\n".join(lines)


def format_json(found: list[Located], checked: int, seconds: float) -> str:
    return json.dumps({"hosts_checked": checked, "seconds": round(seconds, 3),
                       "violations": [f.as_dict() for f in found]}, indent=2)


def _gh_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def format_github(found: list[Located], checked: int, seconds: float) -> str:
    level = {ERROR: "error", WARNING: "warning", INFO: "notice"}
    out = []
    for f in found:
        v = f.violation
        loc = ",".join(p for p in (f"file={f.file}" if f.file else "", f"line={f.line}" if f.line else "") if p)
        props = ",".join(p for p in (loc, f"title={v.rule} {v.host}") if p)
        out.append(f"::{level[v.severity]} {props}::{_gh_escape(f'{v.var}: {v.message}')}")
    out.append(format_text([], checked, seconds).splitlines()[-1])
    return "\n".join(out)


FORMATTERS = {"text": format_text, "json": format_json, "github": format_github}
