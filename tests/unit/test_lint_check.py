"""One host's variables judged: schema problems after the merge over the profile, every rule run
on the valid parts after a schema error, and values lint cannot know (templates, vault)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from vllm_fleet.inventory import VaultValue
from vllm_fleet.inventory.model import UnsafeText
from vllm_fleet.lint import inputs
from vllm_fleet.lint.check import check_fleet_vars
from vllm_fleet.rules import RULES, schema

HOPPER: dict[str, Any] = {
    "vllm_fleet_profile": "hopper", "vllm_fleet_cpu_arch": "x86_64", "vllm_fleet_driver_branch": 580,
    "vllm_fleet_gpu": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_mib": 81559, "count": 1},
}
SPARK: dict[str, Any] = {
    "vllm_fleet_profile": "spark", "vllm_fleet_cpu_arch": "aarch64", "vllm_fleet_driver_branch": 580,
    "vllm_fleet_gpu": {"name": "NVIDIA GB10", "compute_capability": "12.1", "memory_mib": 122880, "count": 1,
                       "unified_memory": True},
}


def host(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(base), **changes}


def rules_of(found: list, severity: str | None = None) -> set[str]:
    return {v.rule for v in found if severity is None or v.severity == severity}


def by_rule(found: list, rule: str) -> list:
    return [v for v in found if v.rule == rule]


# --------------------------------------------------------------------------- inputs table


def test_every_rule_says_what_it_reads() -> None:
    missing = [r.id for r in RULES if r.id not in inputs.RULE_INPUTS]
    assert not missing, f"add {missing} to RULE_INPUTS in src/vllm_fleet/lint/inputs.py"
    assert set(inputs.RULE_INPUTS) <= {r.id for r in RULES}


def test_blocked_and_prune() -> None:
    unusable = {("vllm_fleet_overrides", "serving", "max_model_len")}
    assert inputs.blocked("VF302", unusable) and inputs.blocked("VF305", unusable)
    assert not inputs.blocked("VF104", unusable) and not inputs.blocked("VF402", unusable)
    assert inputs.blocked("VF999", unusable)  # a rule the table does not know reads everything
    assert inputs.blocked("VF101", {("vllm_fleet_gpu",)})
    fv = host(HOPPER, vllm_fleet_overrides={"serving": {"max_model_len": "x", "max_num_seqs": 4}},
              vllm_fleet_instances=[{"name": "a", "gpus": [0], "port": 1}])
    pruned = inputs.prune(fv, unusable | {("vllm_fleet_instances", 0, "port")})
    assert pruned["vllm_fleet_overrides"] == {"serving": {"max_num_seqs": 4}} and "vllm_fleet_instances" not in pruned
    assert fv["vllm_fleet_overrides"]["serving"]["max_model_len"] == "x"  # shared values are not touched


# --------------------------------------------------------------------------- schema


def test_partial_nested_overrides_are_judged_after_the_merge() -> None:
    spark = host(SPARK, vllm_fleet_overrides={"serving": {"speculative_config": {"num_speculative_tokens": 2}}})
    assert schema.validate_host(spark) == []
    hopper = host(HOPPER, vllm_fleet_overrides={"serving": {"speculative_config": {"num_speculative_tokens": 2}}})
    [(var, message)] = schema.validate_host(hopper)
    assert var == "vllm_fleet_overrides.serving.speculative_config.method" and "'hopper'" in message
    digest = "sha256:" + "3" * 64
    assert schema.validate_host(host(HOPPER, vllm_fleet_overrides={"image": {"digest": digest}})) == []
    typo = schema.validate_host(host(HOPPER, vllm_fleet_overrides={"serving": {"max_model_length": 1}}))
    assert typo == [("vllm_fleet_overrides.serving.max_model_length",
                     "unknown key 'max_model_length'; did you mean 'max_model_len'?")]


@pytest.mark.parametrize("override, expected", [
    ({"image": {"digest": "x", "tagg": "y"}},
     {("vllm_fleet_overrides.image.digest", "'x' does not match '^sha256:[0-9a-f]{64}$'"),
      ("vllm_fleet_overrides.image.tagg", "unknown key 'tagg'; did you mean 'tag'?")}),
    ({"image": {"tagg": "y"}}, {("vllm_fleet_overrides.image.tagg", "unknown key 'tagg'; did you mean 'tag'?")}),
    ({"model": 123}, {("vllm_fleet_overrides.model", "123 is neither a string nor a mapping")}),
    ({"model": {"revision": 5}}, {("vllm_fleet_overrides.model.revision", "5 is not of type 'string'")}),
    ({"image": "vllm-openai-v0.2"}, {("vllm_fleet_overrides.image",
                                      "unknown image 'vllm-openai-v0.2'; did you mean 'vllm-openai-v0.28.0'?; name one "
                                      "of vllm-openai-v0.28.0 or give a mapping of image fields")}),
])
def test_string_or_mapping_is_judged_by_its_own_type(override: dict, expected: set) -> None:
    found = set(schema.validate_host(host(HOPPER, vllm_fleet_overrides=override)))
    assert {(v, m) for v, m in found if not m.startswith("unknown image")} == {
        (v, m) for v, m in expected if not m.startswith("unknown image")}
    if "image" in override and isinstance(override["image"], str):
        assert any(v == "vllm_fleet_overrides.image" and "unknown image" in m for v, m in found), found


def test_missing_variable_is_named() -> None:
    fv = {k: v for k, v in HOPPER.items() if k != "vllm_fleet_cpu_arch"}
    fv["vllm_fleet_gpu"] = {k: v for k, v in HOPPER["vllm_fleet_gpu"].items() if k != "count"}
    found = dict(schema.validate_host(fv))
    assert "every fleet host" in found["vllm_fleet_cpu_arch"]
    assert found["vllm_fleet_gpu.count"] == "vllm_fleet_gpu has no 'count', which it needs; add it"
    assert "" not in found


def test_unknown_paths_are_not_judged() -> None:
    fv = host(SPARK, vllm_fleet_bind_address="{{ ansible_host }}", vllm_fleet_driver_branch="{{ b }}")
    assert schema.check_host(fv) != []
    assert schema.check_host(fv, [("vllm_fleet_bind_address",), ("vllm_fleet_driver_branch",)]) == []


# --------------------------------------------------------------------------- every rule, every time


def test_a_schema_error_does_not_stop_the_other_rules() -> None:
    fv = host(HOPPER, vllm_fleet_driver_branch=535,
              vllm_fleet_gpu={**HOPPER["vllm_fleet_gpu"], "memory_mib": "lots"},
              vllm_fleet_overrides={"serving": {"tool_call_parser": "qwen3", "max_model_length": 1}})
    found = check_fleet_vars(fv, "h")
    assert {"VF001", "VF104", "VF304"} <= rules_of(found)
    assert len(by_rule(found, "VF001")) == 2
    assert "VF105" not in rules_of(found)  # it reads the broken memory


def test_missing_gpu_still_checks_the_rest() -> None:
    fv = {k: v for k, v in HOPPER.items() if k != "vllm_fleet_gpu"}
    fv["vllm_fleet_driver_branch"] = 535
    found = check_fleet_vars(fv, "h")
    assert {"VF001", "VF104"} <= rules_of(found)
    assert not {"VF101", "VF105", "VF401"} & rules_of(found)


def test_unknown_profile_still_checks_exposure() -> None:
    fv = host(HOPPER, vllm_fleet_profile="ampere", vllm_fleet_bind_address="0.0.0.0")
    assert rules_of(check_fleet_vars(fv, "h"), "error") == {"VF001", "VF402"}


BAD_VALUES = [None, "x", 5, 1.5, True, [], [1], {}, {"bogus": 1}, "{{ t }}", VaultValue("c"), UnsafeText("{{ u }}")]
PATHS = [("vllm_fleet_profile",), ("vllm_fleet_gpu",), ("vllm_fleet_gpu", "count"), ("vllm_fleet_gpu", "memory_mib"),
         ("vllm_fleet_gpu", "unified_memory"), ("vllm_fleet_cpu_arch",), ("vllm_fleet_driver_branch",),
         ("vllm_fleet_bind_address",), ("vllm_fleet_api_key",), ("vllm_fleet_waivers",), ("vllm_fleet_instances",),
         ("vllm_fleet_overrides",), ("vllm_fleet_overrides", "image"), ("vllm_fleet_overrides", "model"),
         ("vllm_fleet_overrides", "env"), ("vllm_fleet_overrides", "serving"),
         ("vllm_fleet_overrides", "serving", "max_model_len"), ("vllm_fleet_overrides", "serving", "speculative_config"),
         ("vllm_fleet_overrides", "serving", "extra_args"), ("vllm_fleet_overrides", "image", "platforms")]


@pytest.mark.parametrize("path", PATHS, ids=[".".join(map(str, p)) for p in PATHS])
def test_any_broken_value_is_reported_never_raised(path: tuple) -> None:
    """Whatever one value is, lint reports (an error or a note) and never fails itself."""
    for value in BAD_VALUES:
        fv = host(SPARK, vllm_fleet_instances=[{"name": "main", "gpus": [0], "port": 8000}],
                  vllm_fleet_overrides={"image": {}, "model": {}, "serving": {}, "env": {}})
        node = fv
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
        found = check_fleet_vars(fv, "h")  # must not raise
        assert all(v.message and v.var for v in found), (value, found)


# --------------------------------------------------------------------------- values lint cannot know


def test_templated_value_is_a_note_and_skips_its_readers() -> None:
    fv = host(SPARK, vllm_fleet_bind_address="{{ ansible_host }}")
    found = check_fleet_vars(fv, "h")
    assert rules_of(found, "error") == set()
    [note] = by_rule(found, "VF003")
    assert note.var == "vllm_fleet_bind_address" and "VF402" in note.message and note.severity == "info"
    assert rules_of(check_fleet_vars(host(SPARK, vllm_fleet_bind_address="0.0.0.0"), "h"), "error") == {"VF402"}


def test_templated_or_vaulted_secret_counts_as_set() -> None:
    for key in ("{{ vault_vllm_fleet_api_key }}", VaultValue("$ANSIBLE_VAULT;1.1;AES256\n3132")):
        found = check_fleet_vars(host(SPARK, vllm_fleet_bind_address="0.0.0.0", vllm_fleet_api_key=key), "h")
        assert "VF402" not in rules_of(found)
        assert "counts it as set" in by_rule(found, "VF003")[0].message


def test_unsafe_braces_are_literal() -> None:
    found = check_fleet_vars(host(SPARK, vllm_fleet_bind_address=UnsafeText("{{ x }}")), "h")
    assert "VF001" in rules_of(found) and "VF003" not in rules_of(found)


def test_encrypted_vars_file_makes_the_api_key_possibly_set() -> None:
    fv = host(SPARK, vllm_fleet_bind_address="0.0.0.0")
    assert "VF402" in rules_of(check_fleet_vars(fv, "h"))
    assert "VF402" not in rules_of(check_fleet_vars(fv, "h", encrypted=True))
    assert "VF104" in rules_of(check_fleet_vars(host(fv, vllm_fleet_driver_branch=535), "h", encrypted=True))


def test_templated_profile_runs_only_what_needs_no_profile() -> None:
    fv = host(HOPPER, vllm_fleet_profile="{{ group_profile }}", vllm_fleet_bind_address="0.0.0.0")
    found = check_fleet_vars(fv, "h")
    assert rules_of(found) == {"VF003", "VF402"}
