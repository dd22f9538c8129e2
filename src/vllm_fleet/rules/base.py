"""What every rule works with: the host as a rule sees it, a finding, a violation, a rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from vllm_fleet.serving.host import HostPlan

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}


@dataclass
class Violation:
    rule: str
    severity: str
    host: str
    var: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "host": self.host, "var": self.var, "message": self.message}


@dataclass
class HostView:
    """What the rules look at: declared values for lint, measured ones for preflight."""

    name: str
    cfg: dict[str, Any]
    compute_capability: str | None
    gpu_memory_mib: int | None
    gpu_count: int
    cpu_arch: str | None
    driver_branch: int | None
    instances: list[dict[str, Any]] = field(default_factory=list)
    bind_address: str = "127.0.0.1"
    api_key_set: bool = False
    unified_memory: bool = False
    # True when the inventory lists no instances (the default one serves).
    default_instances: bool = False
    waivers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def declared(cls, name: str, plan: HostPlan) -> "HostView":
        """The host as its inventory declares it (lint, and preflight before a driver exists)."""
        return cls(
            name=name, cfg=plan.serving,
            compute_capability=plan.gpu.get("compute_capability"),
            gpu_memory_mib=plan.gpu.get("memory_mib"),
            gpu_count=int(plan.gpu.get("count") or 1),
            cpu_arch=plan.cpu_arch, driver_branch=plan.driver_branch,
            instances=[{"name": i.name, "gpus": i.gpus, "port": i.port} for i in plan.instances],
            bind_address=plan.bind_address, api_key_set=plan.api_key_set,
            unified_memory=plan.unified_memory, default_instances=plan.default_instances,
            waivers=dict(plan.waivers),
        )


Finding = tuple[str, str] | tuple[str, str, str]  # (var, message[, severity override])


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    summary: str
    check: Callable[[HostView], Iterable[Finding]]


def run_rules(h: HostView, rules: Iterable[Rule]) -> list[Violation]:
    """Every finding of `rules` on `h`; a rule the host waives reports a note with the reason."""
    found = []
    for rule in rules:
        for finding in rule.check(h):
            severity = finding[2] if len(finding) == 3 else rule.severity
            message = finding[1]
            if rule.id in h.waivers and severity != INFO:
                severity, message = INFO, f"{message} (waived by vllm_fleet_waivers: {h.waivers[rule.id]})"
            found.append(Violation(rule.id, severity, h.name, finding[0], message))
    return found
