"""Values lint cannot know: Jinja templates (`"{{ ansible_host }}"`, rendered only when Ansible
runs a play) and `!vault` values (decrypted only with the password).

Lint reports each as a note and judges nothing that depends on it: neither the schema's check
of that value nor a rule that reads it. Secrets are the exception that matters: a secret from a
template or the vault is set - its content is never checked - so `vllm_fleet_api_key: "{{
vault_vllm_fleet_api_key }}"` satisfies VF402 as a literal key would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from vllm_fleet.inventory import VaultValue
from vllm_fleet.inventory.model import UnsafeText
from vllm_fleet.rules.schema import Path

# What Ansible's templar looks for before it templates a string (is_possibly_template).
TEMPLATE_MARKERS = ("{{", "{%", "{#")
SECRETS = frozenset({"vllm_fleet_api_key", "vllm_fleet_hf_token"})
TEMPLATE, VAULT = "template", "vault"


@dataclass(frozen=True)
class Unknown:
    path: Path
    why: str  # TEMPLATE or VAULT
    value: Any

    @property
    def secret(self) -> bool:
        return self.path[0] in SECRETS

    def describe(self) -> str:
        if self.why == VAULT:
            return "encrypted with ansible-vault (!vault)"
        shown = self.value if len(self.value) <= 60 else self.value[:57] + "..."
        return f"a Jinja template ({shown!r})"


def is_template(value: Any) -> bool:
    # `!unsafe` text is never templated by Ansible: its braces are literal.
    return (isinstance(value, str) and not isinstance(value, UnsafeText)
            and any(marker in value for marker in TEMPLATE_MARKERS))


def find_unknown(fleet_vars: dict[str, Any]) -> list[Unknown]:
    """Every value (at any depth) lint cannot know, outermost only."""
    return list(_walk(fleet_vars, ()))


def _walk(value: Any, path: Path) -> Iterator[Unknown]:
    if isinstance(value, VaultValue):
        yield Unknown(path, VAULT, value)
    elif is_template(value):
        yield Unknown(path, TEMPLATE, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, path + (index,))
