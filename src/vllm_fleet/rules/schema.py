"""VF001: JSON Schema validation of the profile catalogue and of each host's fleet variables.

Schema errors come back as (variable path, message) pairs; an unknown key gets a
"did you mean" suggestion taken from the schema's own property names.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterator

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from vllm_fleet.resources import schema_json as _load
from vllm_fleet.serving import instances, profiles
from vllm_fleet.suggest import suggest

NAMESPACE = "vllm_fleet_"


@lru_cache(maxsize=1)
def _registry() -> Registry:
    resources = []
    for name in ("profiles.schema.json", "host.schema.json"):
        schema = _load(name)
        resources.append((name, Resource.from_contents(schema)))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@lru_cache(maxsize=1)
def catalogue_validator() -> Draft202012Validator:
    return Draft202012Validator(_load("profiles.schema.json"), registry=_registry())


@lru_cache(maxsize=1)
def host_schema() -> dict[str, Any]:
    schema = _load("host.schema.json")
    # The profile enum comes from the catalogue so the two can never disagree.
    schema["properties"]["vllm_fleet_profile"]["enum"] = profiles.profile_names()
    schema["properties"]["vllm_fleet_instances"]["items"]["properties"]["name"]["pattern"] = instances.NAME_PATTERN
    return schema


@lru_cache(maxsize=1)
def host_validator() -> Draft202012Validator:
    return Draft202012Validator(host_schema(), registry=_registry(), format_checker=FormatChecker())


def _path(error: ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _resolve_subschema(error: ValidationError) -> dict[str, Any]:
    schema = error.schema
    if "$ref" in schema:
        schema = host_validator().evolve(schema=schema).resolver.lookup(schema["$ref"]).contents
    return schema if isinstance(schema, dict) else {}


def _messages(error: ValidationError) -> Iterator[tuple[str, str]]:
    path = _path(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted((_resolve_subschema(error).get("properties") or {}))
        for extra in sorted(set(error.instance) - set(known)):
            where = f"{path}.{extra}" if path else extra
            yield where, f"unknown key {extra!r}{suggest(extra, known)}"
        return
    if error.validator in ("oneOf", "anyOf") and error.context:
        # Report the branch that got furthest instead of jsonschema's summary.
        best = max(error.context, key=lambda e: len(e.absolute_path))
        yield from _messages(best)
        return
    if error.validator == "enum":
        choices = [str(c) for c in error.validator_value]
        hint = suggest(str(error.instance), choices)
        yield path, f"{error.instance!r} is not one of {', '.join(choices)}{hint}"
        return
    yield path, error.message


def validate_host(fleet_vars: dict[str, Any]) -> list[tuple[str, str]]:
    """Errors in a host's vllm_fleet_* variables, as (variable path, message), sorted."""
    known = sorted(host_schema()["properties"])
    found: list[tuple[str, str]] = []
    for key in fleet_vars:
        if key.startswith(NAMESPACE) and key not in known:
            found.append((key, f"unknown variable {key!r}{suggest(key, known)}"))
    for error in host_validator().iter_errors(fleet_vars):
        found.extend(_messages(error))
    return sorted(set(found))


def validate_catalogue(data: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Errors in the profile catalogue (profiles.yml), including dangling image/model names."""
    data = profiles.catalogue() if data is None else data
    found = [m for e in catalogue_validator().iter_errors(data) for m in _messages(e)]
    for name, profile in (data.get("profiles") or {}).items():
        for kind, table in (("image", "images"), ("model", "models")):
            ref = profile.get(kind) if isinstance(profile, dict) else None
            if isinstance(ref, str) and ref not in (data.get(table) or {}):
                found.append((f"profiles.{name}.{kind}", f"names {kind} {ref!r}, which is not in {table}"))
    return sorted(set(found))
