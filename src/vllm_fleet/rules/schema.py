"""VF001: JSON Schema validation of the profile catalogue and of each host's fleet variables.

Schema errors come back as problems with the path into the variable they concern
(`vllm_fleet_overrides.serving.max_model_len`, `vllm_fleet_instances[1].port`); an unknown key
gets a "did you mean" suggestion taken from the schema's own property names, a missing
property is named in the path, and a value checked against alternatives (`oneOf`: a
catalogue name or a mapping of fields) is judged by the alternative of its own type.

`vllm_fleet_overrides` is deep-merged over the profile (`profiles.resolve_serving`), so a
partial override of a nested mapping is complete only once merged: the overrides are checked
as written for types and unknown keys, and the merged result for what must be present.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Iterator

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from vllm_fleet.resources import schema_json as _load
from vllm_fleet.serving import instances, profiles
from vllm_fleet.suggest import suggest

NAMESPACE = "vllm_fleet_"
OVERRIDES = "vllm_fleet_overrides"

Path = tuple[Any, ...]  # keys (str) and list indices (int) into a host's variables

# Problem kinds: what lint may still do with the rest of the variable.
UNKNOWN_KEY = "unknown-key"  # a key nothing reads: drop it, everything else stands
MISSING = "missing"          # a required value is absent
INVALID = "invalid"          # the value at the path cannot be used

_FORMAT_WORDS = {"ipv4": "an IPv4 address", "ipv6": "an IPv6 address"}
_TYPE_WORDS = {"string": "a string", "object": "a mapping", "array": "a list", "integer": "an integer",
               "number": "a number", "boolean": "a boolean", "null": "null"}


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str
    kind: str = INVALID

    @property
    def var(self) -> str:
        return format_path(self.path)


def format_path(path: Iterable[Any]) -> str:
    """('v', 'a', 1, 'b') -> 'v.a[1].b'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def under(path: Path, prefixes: Iterable[Path]) -> bool:
    """Whether `path` is one of `prefixes` or inside one."""
    return any(path[:len(p)] == p for p in prefixes)


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


@lru_cache(maxsize=None)
def _part_validator(kind: str) -> Draft202012Validator:
    """The catalogue's shape of one overridable part (image, model, serving, env, smoke)."""
    ref = f"{_load('profiles.schema.json')['$id']}#/$defs/{kind}"
    return Draft202012Validator({"$ref": ref}, registry=_registry(), format_checker=FormatChecker())


def _lookup(schema: Any) -> dict[str, Any]:
    """`schema` with a `$ref` followed (relative refs are tried against both schema files)."""
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    for base in (_load("host.schema.json")["$id"], _load("profiles.schema.json")["$id"]):
        try:
            found = _registry().resolver(base_uri=base).lookup(ref).contents
        except Exception:  # noqa: BLE001 - referencing raises several kinds of "not here"
            continue
        return found if isinstance(found, dict) else {}
    return {}


def _missing_name(error: ValidationError) -> str:
    missing = [p for p in error.validator_value if isinstance(error.instance, dict) and p not in error.instance]
    return next((p for p in missing if error.message.startswith(repr(p))), missing[0] if missing else "?")


def _problems(error: ValidationError) -> Iterator[tuple[Path, str, str]]:
    """(path, message, kind) for one jsonschema error, its alternatives resolved."""
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(_lookup(error.schema).get("properties") or {})
        for extra in sorted(set(error.instance) - set(known), key=str):
            yield path + (extra,), f"unknown key {extra!r}{suggest(str(extra), known)}", UNKNOWN_KEY
        return
    if error.validator == "required":
        name = _missing_name(error)
        if path:
            yield path + (name,), f"{format_path(path)} has no {name!r}, which it needs; add it", MISSING
        else:
            yield ((name,), f"{name} is not set, and every fleet host (one with vllm_fleet_profile) needs it; "
                            "set it in the group_vars of the host's group", MISSING)
        return
    if error.validator in ("oneOf", "anyOf") and error.context:
        yield from _alternative(error)
        return
    if error.validator == "enum":
        choices = [str(c) for c in error.validator_value]
        hint = suggest(str(error.instance), choices)
        yield path, f"{error.instance!r} is not one of {', '.join(choices)}{hint}", INVALID
        return
    yield path, error.message, INVALID


def _none_of(words: list[str]) -> str:
    """'not a string', 'neither a string nor a mapping', 'none of a, b, c'."""
    if len(words) == 1:
        return f"not {words[0]}"
    if len(words) == 2:
        return f"neither {words[0]} nor {words[1]}"
    return f"none of {', '.join(words)}"


def _branch_types(branch: Any) -> list[str] | None:
    declared = _lookup(branch).get("type")
    if declared is None:
        return None
    return [declared] if isinstance(declared, str) else list(declared)


def _alternative(error: ValidationError) -> Iterator[tuple[Path, str, str]]:
    """The errors of the alternative whose type is the value's own (a string is judged as a
    catalogue name, a mapping as fields), instead of jsonschema's "not valid under any"."""
    path = tuple(error.absolute_path)
    branches = list(error.validator_value)
    types = [_branch_types(b) for b in branches]
    checker = host_validator()
    if any(t is not None for t in types):
        for index, branch_types in enumerate(types):
            if branch_types and any(checker.is_type(error.instance, t) for t in branch_types):
                subs = [e for e in error.context if e.relative_schema_path and e.relative_schema_path[0] == index]
                if not subs:  # valid under this one: oneOf failed because another matched too
                    yield path, error.message, INVALID
                    return
                for sub in subs:
                    yield from _problems(sub)
                return
        else:
            words = [_TYPE_WORDS.get(t, t) for branch_types in types for t in branch_types or []]
            yield path, f"{error.instance!r:.60} is {_none_of(list(dict.fromkeys(words)))}", INVALID
            return
    if all(e.validator == "format" for e in error.context):
        formats = [_FORMAT_WORDS.get(str(e.validator_value), f"a valid {e.validator_value}") for e in error.context]
        yield path, f"{error.instance!r} is {_none_of(list(dict.fromkeys(formats)))}", INVALID
        return
    best = max(error.context, key=lambda e: len(e.absolute_path))
    yield from _problems(best)


def check_host(fleet_vars: dict[str, Any], unknown: Iterable[Path] = ()) -> list[Problem]:
    """Every schema problem of a host's vllm_fleet_* variables, sorted by variable.

    `unknown` are paths whose values lint cannot know (a Jinja template, a vault value): the
    schema says nothing about them, nor about anything inside them.
    """
    unknown = [tuple(p) for p in unknown]
    known = host_schema()["properties"]
    found: list[Problem] = []
    for key in fleet_vars:
        if isinstance(key, str) and key.startswith(NAMESPACE) and key not in known:
            found.append(Problem((key,), f"unknown variable {key!r}{suggest(key, sorted(known))}", UNKNOWN_KEY))
    for error in host_validator().iter_errors(fleet_vars):
        for path, message, kind in _problems(error):
            if kind == MISSING and path[:1] == (OVERRIDES,):
                continue  # an override need not be complete: the merged result is judged below
            found.append(Problem(path, message, kind))
    found += _merged_problems(fleet_vars, found, unknown)
    kept = {(p.path, p.message): p for p in found if not under(p.path, unknown)}
    return sorted(kept.values(), key=lambda p: (p.var, p.message))


def _merged_problems(fleet_vars: dict[str, Any], so_far: list[Problem], unknown: list[Path]) -> list[Problem]:
    """Problems of the profile with the overrides deep-merged over it, at the override's path."""
    overrides = fleet_vars.get(OVERRIDES)
    if not isinstance(overrides, dict):
        return []
    names = profiles.profile_names()
    profile = fleet_vars.get("vllm_fleet_profile")
    # Without a usable profile, merge over a stand-in: types and unknown keys are judged the
    # same over any profile; what must be present is not.
    stand_in = profile not in names or under(("vllm_fleet_profile",), unknown)
    base = names[0] if stand_in else str(profile)
    wrong_type = {p.path[1] for p in so_far if len(p.path) == 2 and p.path[0] == OVERRIDES and p.kind == INVALID}
    parts = {k: v for k, v in overrides.items()
             if k in profiles.OVERRIDABLE and k not in wrong_type and not under((OVERRIDES, k), unknown)}
    found: list[Problem] = []
    catalogue = profiles.catalogue()
    for kind, table in (("image", "images"), ("model", "models")):
        ref = parts.get(kind)
        if isinstance(ref, str) and ref not in catalogue[table]:
            choices = sorted(catalogue[table])
            found.append(Problem((OVERRIDES, kind), f"unknown {kind} {ref!r}{suggest(ref, choices)}; name one of "
                                                    f"{', '.join(choices)} or give a mapping of {kind} fields"))
            del parts[kind]
    try:
        merged = profiles.resolve_serving(base, parts)
    except profiles.ProfileError as exc:
        return found + [Problem((OVERRIDES,), str(exc))]
    for kind, value in parts.items():
        if not isinstance(value, dict):
            continue  # a catalogue name: its entry is held to the schema with the catalogue
        instance = merged[kind]
        if kind == "image" and "name" not in value:
            instance = {k: v for k, v in instance.items() if k != "name"}  # added by resolve_serving
        for error in _part_validator(kind).iter_errors(instance):
            for path, message, problem_kind in _problems(error):
                if problem_kind == MISSING:
                    if stand_in:
                        continue
                    where = format_path((OVERRIDES, kind) + path[:-1])
                    message = (f"{where} has no {path[-1]!r}: neither the override nor profile {base!r} sets it, "
                               "and the merged result needs it; add it")
                found.append(Problem((OVERRIDES, kind) + path, message, problem_kind))
    return found


def validate_host(fleet_vars: dict[str, Any]) -> list[tuple[str, str]]:
    """Errors in a host's vllm_fleet_* variables, as (variable path, message), sorted."""
    return sorted({(p.var, p.message) for p in check_host(fleet_vars)})


def validate_catalogue(data: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Errors in the profile catalogue (profiles.yml), including dangling image/model names."""
    data = profiles.catalogue() if data is None else data
    found = [(format_path(p), m) for e in catalogue_validator().iter_errors(data) for p, m, _ in _problems(e)]
    for name, profile in (data.get("profiles") or {}).items():
        for kind, table in (("image", "images"), ("model", "models")):
            ref = profile.get(kind) if isinstance(profile, dict) else None
            if isinstance(ref, str) and ref not in (data.get(table) or {}):
                found.append((f"profiles.{name}.{kind}", f"names {kind} {ref!r}, which is not in {table}"))
    return sorted(set(found))
