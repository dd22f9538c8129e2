"""The rules a fleet host is held to: the JSON Schema (VF001, `schema`), the serving rules by
concern (`hardware`, `unified_memory`, `image`, `vllm_release`, `exposure`) and the preflight
comparisons of declared and measured hardware (`preflight`). Each rule has a stable id, a
severity and a message that names the fix."""

from __future__ import annotations

from vllm_fleet.rules import exposure, hardware, image, unified_memory, vllm_release
from vllm_fleet.rules.base import ERROR, INFO, SEVERITY_ORDER, WARNING, HostView, Rule, Violation, run_rules

# The rules lint runs on what an inventory declares, in id order.
RULES: tuple[Rule, ...] = tuple(sorted(
    hardware.RULES + unified_memory.RULES + image.RULES + vllm_release.RULES + exposure.RULES,
    key=lambda r: r.id))

__all__ = ["ERROR", "INFO", "RULES", "SEVERITY_ORDER", "WARNING", "HostView", "Rule", "Violation", "run_rules"]
