"""Every role default is documented in the role's meta/argument_specs.yml with the same default,
so `ansible-doc -t role` and the role's validation at run time know every variable a user can set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"


def _options(role: Path) -> dict:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    out: dict = {}
    for entry in specs.values():
        out.update(entry.get("options") or {})
    return out


@pytest.mark.parametrize("role", sorted(p.name for p in ROLES.iterdir() if (p / "defaults" / "main.yml").is_file()))
def test_every_default_has_an_argument_spec_with_its_value(role: str) -> None:
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {}
    options = _options(ROLES / role)
    assert sorted(set(defaults) - set(options)) == [], f"defaults of {role} without an argument spec"
    differing = {k: (v, options[k].get("default")) for k, v in defaults.items()
                 if "default" in options[k] and options[k]["default"] != v}
    assert differing == {}, f"{role}: argument_specs defaults differ from defaults/main.yml"
