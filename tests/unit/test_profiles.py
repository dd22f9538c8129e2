"""The catalogue is valid, every profile renders, and overrides merge the way the README says."""

from __future__ import annotations

import json

import pytest

from vllm_fleet.rules import schema
from vllm_fleet.serving import profiles, releases
from vllm_fleet.serving.profiles import ProfileError, resolve_serving
from vllm_fleet.serving.args import flags_of, serve_args, serve_env


def test_catalogue_matches_its_schema() -> None:
    assert schema.validate_catalogue() == []


def test_catalogue_schema_rejects_a_broken_profile() -> None:
    data = json.loads(json.dumps(profiles.catalogue()))
    data["profiles"]["hopper"]["serving"]["max_model_lenn"] = 4
    data["profiles"]["spark"]["image"] = "no-such-image"
    del data["images"]["vllm-openai-v0.28.0"]["digest"]
    found = dict(schema.validate_catalogue(data))
    assert "did you mean 'max_model_len'" in found["profiles.hopper.serving.max_model_lenn"]
    assert "no-such-image" in found["profiles.spark.image"]
    assert any("digest" in msg for msg in found.values())


@pytest.mark.parametrize("name", profiles.profile_names())
def test_every_profile_renders_a_model_and_known_flags(name: str) -> None:
    cfg = resolve_serving(name)
    args = serve_args(cfg)
    assert args[0] == cfg["model"]["id"]
    assert args[args.index("--max-model-len") + 1] == str(cfg["serving"]["max_model_len"])
    table = releases.releases()["flags"]
    assert [f for f in flags_of(args) if f not in table] == []


def test_seed_spark_command_is_kept() -> None:
    args = serve_args(resolve_serving("spark"))
    for flag, value in [("--kv-cache-dtype", "fp8"), ("--attention-backend", "flashinfer"), ("--moe-backend", "marlin"),
                        ("--gpu-memory-utilization", "0.85"), ("--max-model-len", "65536"), ("--max-num-seqs", "4")]:
        assert args[args.index(flag) + 1] == value
    assert "--enable-chunked-prefill" in args and "--enable-prefix-caching" in args
    spec = json.loads(args[args.index("--speculative-config") + 1])
    assert spec == {"method": "mtp", "num_speculative_tokens": 3, "moe_backend": "triton"}
    assert set(serve_env(resolve_serving("spark"))) == {
        "VLLM_USE_FLASHINFER_MOE_FP4", "VLLM_FP8_MOE_BACKEND", "FLASHINFER_DISABLE_VERSION_CHECK"}
    # facts: --quantization modelopt is FP8; the checkpoint is auto-detected as modelopt_mixed.
    assert "--quantization" not in args


def test_overrides_deep_merge_and_env_null_removes() -> None:
    cfg = resolve_serving("spark", {"serving": {"max_num_seqs": 2}, "env": {"VLLM_FP8_MOE_BACKEND": None, "X_Y": "1"}})
    assert cfg["serving"]["max_num_seqs"] == 2
    assert cfg["serving"]["max_model_len"] == 65536  # untouched siblings survive
    assert "VLLM_FP8_MOE_BACKEND" not in cfg["env"] and cfg["env"]["X_Y"] == "1"
    assert resolve_serving("spark")["serving"]["max_num_seqs"] == 4  # the catalogue is not mutated


def test_image_override_by_field_and_unknown_names() -> None:
    cfg = resolve_serving("hopper", {"image": {"repository": "registry.lab:5000/vllm-standin"}})
    assert cfg["image"]["repository"] == "registry.lab:5000/vllm-standin"
    assert cfg["image"]["digest"].startswith("sha256:")
    with pytest.raises(ProfileError, match="unknown profile 'hoper'; choose one of: blackwell"):
        resolve_serving("hoper")
    with pytest.raises(ProfileError, match="unknown image 'nope'"):
        resolve_serving("hopper", {"image": "nope"})


@pytest.mark.parametrize("version,field,style", [("0.11.0", "reasoning_content", "request_too_large"),
                                                 ("0.15.1", "reasoning_content", "request_too_large"),
                                                 ("0.16.0", "reasoning", "request_too_large"),
                                                 ("0.28.0", "reasoning", "request_too_large"),
                                                 ("0.32.0", "reasoning", "clamped")])
def test_version_knowledge(version: str, field: str, style: str) -> None:
    assert releases.reasoning_field(version) == field
    assert releases.context_error_style(version) == style


def test_driver_minimums() -> None:
    assert releases.driver_branch_min(12) == 525 and releases.driver_branch_min(13) == 580
