"""vllm_releases.yml held to what the official vLLM wheels define.

tests/fixtures/vllm-wheel-facts/<version>.json are extracted from the PyPI wheels by
tools/vllm_wheel_facts.py (static reading of the wheel's source; vLLM is never imported). This
test only reads those committed files: it downloads nothing.

For every version we have facts for:
* a flag / env var / parser / speculative method / --speculative-config key of the table exists
  in that release exactly when the table's since/until bounds say so (inside the bounds and not
  outside);
* a flag's `choices` in the table are a SUBSET of the values that release accepts. Not equality:
  vLLM's lists grow every release (--kv-cache-dtype: 7 values in 0.17.0, 19 in 0.32.0) and the
  table keeps one list, the values the project vouches for; a subset checked against every
  release inside the flag's bounds means lint never calls valid a value some covered release
  rejects (it may call invalid a value that only newer releases accept, the safe side).
* env vars marked with a `reader:` other than vllm are exempt (vLLM's envs.py does not own them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vllm_fleet.serving import args as serve_args_module
from vllm_fleet.serving import profiles
from vllm_fleet.serving.args import flags_of, serve_args
from vllm_fleet.serving.profiles import resolve_serving
from vllm_fleet.serving.releases import available_in, releases, version_tuple

FACTS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "vllm-wheel-facts"
# The versions the brief asks for; more may be present (neighbours that pin a since/until).
REQUIRED_VERSIONS = ("0.17.0", "0.20.0", "0.25.0", "0.28.0", "0.32.0")
# Categories of the table that have version bounds per name (same entry shape as flags/env) and
# the facts key they are checked against.
NAMED = (
    ("tool_call_parsers", "tool_call_parsers"),
    ("reasoning_parsers", "reasoning_parsers"),
    ("speculative_methods", "speculative_methods"),
    ("speculative_config_keys", "speculative_config_keys"),
)


def _load() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(FACTS_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out[data["vllm_version"]] = data
    return dict(sorted(out.items(), key=lambda kv: version_tuple(kv[0])))


FACTS = _load()
VERSIONS = list(FACTS)
TABLE = releases()


def _pinned_versions() -> list[str]:
    return sorted({str(img["vllm_version"]) for img in profiles.catalogue()["images"].values()},
                  key=version_tuple)


def _bounds(spec: dict[str, Any]) -> str:
    return ", ".join(f"{k} {spec[k]}" for k in ("since", "until") if k in spec) or "every release"


# ---- the fixtures themselves ------------------------------------------------------------------


def test_facts_cover_the_required_and_pinned_versions() -> None:
    missing = [v for v in (*REQUIRED_VERSIONS, *_pinned_versions()) if v not in FACTS]
    assert not missing, (f"no wheel facts for {missing}; "
                         f"run tools/vllm_wheel_facts.py VERSION -o {FACTS_DIR}/VERSION.json")


@pytest.mark.parametrize("version", VERSIONS)
def test_facts_file_is_complete(version: str) -> None:
    data = FACTS[version]
    assert (FACTS_DIR / f"{version}.json").is_file(), "file name must be the version"
    assert data["wheel"].startswith(f"vllm-{version}-") and data["wheel"].endswith(".whl")
    assert len(data["sha256"]) == 64
    for key in ("flags", "env_vars", "tool_call_parsers", "reasoning_parsers", "speculative_methods",
                "speculative_config_keys"):
        assert data[key] is not None, f"{version}: {key} not extracted: {data.get('notes')}"
        assert key in data["sources"]


# ---- flags ----------------------------------------------------------------------------------


def test_every_flag_the_renderer_can_emit_is_in_the_table() -> None:
    emitted = {"--served-model-name", "--revision", "--host", "--port"}
    emitted |= {flag for _, flag in serve_args_module.VALUE_FLAGS}
    emitted |= {flag for _, on, off in serve_args_module.BOOL_FLAGS for flag in (on, off) if flag}
    emitted |= {flag for _, flag in serve_args_module.JSON_FLAGS}
    assert sorted(emitted - set(TABLE["flags"])) == []


@pytest.mark.parametrize("flag", sorted(TABLE["flags"]))
def test_flag_exists_exactly_within_its_bounds(flag: str) -> None:
    spec = TABLE["flags"][flag]
    wrong = {v: ("present" if flag in FACTS[v]["flags"] else "absent") for v in VERSIONS
             if available_in(spec, v) != (flag in FACTS[v]["flags"])}
    assert not wrong, f"{flag} ({_bounds(spec)}) disagrees with the wheels: {wrong}"


@pytest.mark.parametrize("flag", sorted(f for f, s in TABLE["flags"].items() if s.get("choices")))
def test_flag_choices_are_accepted_by_every_release_in_bounds(flag: str) -> None:
    """Each listed value is accepted by every release inside the flag's bounds, from its
    `choices_since` release on when it has one (and, that bound being exact, not before it)."""
    spec = TABLE["flags"][flag]
    value_since = spec.get("choices_since") or {}
    assert set(value_since) <= set(spec["choices"]), "choices_since names a value not in choices"
    problems = {}
    for v in VERSIONS:
        if not available_in(spec, v):
            continue
        wheel = FACTS[v]["flags"][flag].get("choices")
        if wheel is None:
            problems[v] = "the wheel has no static choices for it"
            continue
        accepted = {str(w) for w in wheel}
        missing = [c for c in spec["choices"]
                   if str(c) not in accepted and available_in({"since": value_since[c]} if c in value_since else {}, v)]
        early = [c for c, since in value_since.items() if str(c) in accepted and not available_in({"since": since}, v)]
        if missing:
            problems[v] = f"not accepted: {missing}"
        if early:
            problems[v] = problems.get(v, "") + f" accepted before its choices_since: {early}"
    assert not problems, f"{flag} choices {spec['choices']} (choices_since {value_since}): {problems}"


# ---- env vars -------------------------------------------------------------------------------


@pytest.mark.parametrize("var", sorted(v for v, s in TABLE["env"].items() if s.get("reader") in (None, "vllm")))
def test_env_var_is_read_exactly_within_its_bounds(var: str) -> None:
    spec = TABLE["env"][var]
    wrong = {v: ("read" if var in FACTS[v]["env_vars"] else "not read") for v in VERSIONS
             if available_in(spec, v) != (var in FACTS[v]["env_vars"])}
    assert not wrong, f"{var} ({_bounds(spec)}) disagrees with vllm/envs.py of the wheels: {wrong}"


def test_vllm_prefixed_env_vars_are_not_exempted() -> None:
    """A VLLM_* variable is vLLM's own; a non-vllm `reader:` would hide it from the check above."""
    assert [v for v, s in TABLE["env"].items() if v.startswith("VLLM_") and s.get("reader") not in (None, "vllm")] == []


# ---- parsers, speculative methods, --speculative-config keys --------------------------------


@pytest.mark.parametrize("table_key,facts_key", NAMED, ids=[t for t, _ in NAMED])
def test_named_entries_exist_exactly_within_their_bounds(table_key: str, facts_key: str) -> None:
    problems = {}
    for name, spec in TABLE[table_key].items():
        wrong = {v: ("present" if name in FACTS[v][facts_key] else "absent") for v in VERSIONS
                 if available_in(spec or {}, v) != (name in FACTS[v][facts_key])}
        if wrong:
            problems[name] = f"({_bounds(spec or {})}) {wrong}"
    assert not problems, f"{table_key} disagrees with the wheels' {facts_key}: {problems}"


# ---- the catalogue's profiles against their pinned release ----------------------------------


@pytest.mark.parametrize("name", profiles.profile_names())
def test_profile_is_accepted_by_its_pinned_release(name: str) -> None:
    """Straight from the wheel facts, not through the table: every flag the profile renders exists
    in the pinned release, static choices hold, parser names and the speculative method are
    registered there and every --speculative-config key is a SpeculativeConfig field."""
    cfg = resolve_serving(name)
    version = str(cfg["image"]["vllm_version"])
    facts = FACTS[version]
    args = serve_args(cfg)
    problems = [f"{f} does not exist" for f in flags_of(args) if f not in facts["flags"]]
    for i, arg in enumerate(args[:-1]):
        entry = facts["flags"].get(arg)
        if entry and entry.get("choices") and str(args[i + 1]) not in {str(c) for c in entry["choices"]}:
            problems.append(f"{arg} {args[i + 1]!r} is not one of its choices")
    serving = cfg["serving"]
    if serving.get("tool_call_parser") and serving["tool_call_parser"] not in facts["tool_call_parsers"]:
        problems.append(f"tool parser {serving['tool_call_parser']!r} not registered")
    if serving.get("reasoning_parser") and serving["reasoning_parser"] not in facts["reasoning_parsers"]:
        problems.append(f"reasoning parser {serving['reasoning_parser']!r} not registered")
    spec = serving.get("speculative_config") or {}
    if spec.get("method") and spec["method"] not in facts["speculative_methods"]:
        problems.append(f"speculative method {spec['method']!r} unknown")
    problems += [f"--speculative-config key {k!r} is not a SpeculativeConfig field"
                 for k in spec if k not in facts["speculative_config_keys"]]
    assert not problems, f"profile {name} on vLLM {version}: {problems}"
