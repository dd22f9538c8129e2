"""The lab CPU profile (lab/real-vllm/cpu-profile.yml): the serving configuration of the lab host
that runs real vLLM (CPU build) is derived from its group's real profile, every GPU-only option
is gone, every change has a reason, and `vllm-fleet lint` accepts the host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vllm_fleet.rules import schema
from vllm_fleet.serving import profiles
from vllm_fleet.cli import main
from vllm_fleet_lab.cpu_profile import cpu_host_vars, cpu_overrides, load_cpu_profile
from vllm_fleet_lab.config import SPARK_STANDIN_WAIVERS
from vllm_fleet_lab.realvllm import TINY_REPO_ID
from vllm_fleet.serving.profiles import resolve_serving
from vllm_fleet.serving.args import flags_of, serve_args, serve_env

REPO = Path(__file__).resolve().parents[2]
IMAGE = {"repository": "vllm-fleet-lab-registry:5000/real-vllm", "digest": "sha256:" + "ab" * 32}
PROFILES = profiles.profile_names()
# Flags that only mean something on a GPU (or for the real checkpoint); none may be left.
GPU_ONLY_FLAGS = {"--speculative-config", "--attention-backend", "--moe-backend", "--quantization"}
GPU_ONLY_ENV_MARKERS = ("FLASHINFER_MOE", "_MOE_BACKEND", "CUDA", "NCCL")


def _cpu_config(name: str) -> dict:
    overrides, _ = cpu_overrides(name, IMAGE)
    return resolve_serving(name, overrides)


def _flag_value(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


@pytest.mark.parametrize("name", PROFILES)
def test_derived_config_renders_without_gpu_only_flags(name: str) -> None:
    cfg = _cpu_config(name)
    args = serve_args(cfg)
    assert args[0] == TINY_REPO_ID and _flag_value(args, "--served-model-name") == TINY_REPO_ID
    assert not GPU_ONLY_FLAGS & set(flags_of(args)), args
    assert _flag_value(args, "--kv-cache-dtype") in (None, "auto")
    assert _flag_value(args, "--tensor-parallel-size") == "1"
    assert _flag_value(args, "--max-model-len") == "4096"
    assert args[-3:] == ["--dtype", "float32", "--enforce-eager"]
    # What the real server is there to check stays as the profile has it.
    real = serve_args(resolve_serving(name))
    for flag in ("--reasoning-parser", "--tool-call-parser", "--max-num-seqs", "--gpu-memory-utilization"):
        assert _flag_value(args, flag) == _flag_value(real, flag)
    for flag in ("--enable-chunked-prefill", "--enable-prefix-caching"):
        assert (flag in args) == (flag in real)
    # The tiny model has no tool-call script; auto tool choice (and so the smoke tool check) is off.
    assert "--enable-auto-tool-choice" not in args
    env = serve_env(cfg)
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert not [k for k in env if any(m in k for m in GPU_ONLY_ENV_MARKERS)], env
    assert cfg["image"]["repository"] == IMAGE["repository"] and cfg["image"]["digest"] == IMAGE["digest"]
    assert cfg["image"]["vllm_version"] == "0.32.0" and cfg["image"]["platforms"] == ["linux/amd64"]


@pytest.mark.parametrize("name", PROFILES)
def test_every_change_has_a_reason(name: str) -> None:
    overrides, reasons = cpu_overrides(name, IMAGE)
    explained = {option for option, _ in reasons}
    assert all(why.strip() and len(why) > 40 for _, why in reasons), reasons
    before, after = resolve_serving(name), resolve_serving(name, overrides)
    changed_serving = {f"serving.{k}" for k in set(before["serving"]) | set(after["serving"])
                       if before["serving"].get(k) != after["serving"].get(k)}
    changed_env = {f"env.{k}" for k in set(before["env"]) | set(after["env"])
                   if before["env"].get(k) != after["env"].get(k)}
    assert changed_serving | changed_env <= explained
    assert "model" in explained  # the model id changes for every profile
    # Nothing is explained that did not change.
    assert explained - {"model"} == changed_serving | changed_env


def test_every_serving_field_and_env_var_of_the_catalogue_is_accounted_for() -> None:
    """A field added to profiles.yml must be decided on here: changed for the CPU, or kept."""
    data = load_cpu_profile()
    decided = set(data["serving"]) | set(data["kept"])
    fields = {k for p in profiles.catalogue()["profiles"].values() for k in p["serving"]}
    assert fields <= decided, f"decide in lab/real-vllm/cpu-profile.yml: {sorted(fields - decided)}"
    assert not set(data["serving"]) & set(data["kept"])
    assert all(str(why).strip() for why in data["kept"].values())
    env_vars = {k for p in profiles.catalogue()["profiles"].values() for k in (p.get("env") or {})}
    rules = data["env"]
    for var in env_vars:
        assert var in rules["keep"] or var in rules["remove"], f"give {var} a reason in cpu-profile.yml env"


def test_spark_keeps_only_what_lint_requires() -> None:
    overrides, reasons = cpu_overrides("spark", IMAGE)
    env = resolve_serving("spark", overrides)["env"]
    assert env == {"FLASHINFER_DISABLE_VERSION_CHECK": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    assert {o for o, _ in reasons} >= {"env.VLLM_USE_FLASHINFER_MOE_FP4", "env.VLLM_FP8_MOE_BACKEND",
                                       "serving.speculative_config", "serving.attention_backend",
                                       "serving.moe_backend", "serving.kv_cache_dtype"}


def test_fallback_host_gets_one_gpu_instance() -> None:
    host = cpu_host_vars("fallback", IMAGE, base_overrides={"image": {"repository": "x/vllm-standin"},
                                                             "model": {"weights_gib": 1}})
    assert host["vllm_fleet_instances"] == [{"name": "main", "gpus": [0], "port": 8000}]
    merged = host["vllm_fleet_overrides"]
    assert merged["image"]["repository"] == IMAGE["repository"]  # the stand-in image is replaced
    assert merged["model"]["weights_gib"] == 0.01 and merged["serving"]["tensor_parallel_size"] == 1
    assert all(not k.startswith("vllm_fleet_") or k in schema.host_schema()["properties"] for k in host)


def _lab_like_inventory(root: Path) -> Path:
    """The example's groups and group_vars, one lab stand-in host per group with the real-vLLM
    host_vars (as vllm_fleet_lab.inventory writes host_vars, plus cpu_host_vars)."""
    example = REPO / "inventory" / "example"
    groups = ("hopper", "blackwell", "spark", "fallback")
    tree = {"all": {"children": {"gpu": {"children": {g: {"hosts": {f"lab-{g}": None}} for g in groups}}}}}
    (root / "host_vars").mkdir(parents=True)
    (root / "hosts.yml").write_text(yaml.safe_dump(tree))
    for path in (example / "group_vars").rglob("*.yml"):
        dest = root / "group_vars" / path.relative_to(example / "group_vars")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(path.read_text())
    for group in groups:
        gv = yaml.safe_load((example / "group_vars" / f"{group}.yml").read_text())
        waivers = {"vllm_fleet_waivers": dict(SPARK_STANDIN_WAIVERS)} if group == "spark" else {}
        host = {**waivers, **cpu_host_vars(gv["vllm_fleet_profile"], IMAGE)}
        (root / "host_vars" / f"lab-{group}.yml").write_text(yaml.safe_dump(host, sort_keys=False))
    return root


def _lint(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict]]:
    code = main(["lint", str(root), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)["violations"]


def test_lint_accepts_real_vllm_hosts_strictly(tmp_path: Path, capsys) -> None:
    """No error and no warning: the tiny model's id is a model override the schema allows, and
    --dtype / --enforce-eager are in vllm_releases.yml's flag table."""
    root = _lab_like_inventory(tmp_path)
    code, found = _lint(root, capsys)
    assert [v for v in found if v["severity"] in ("error", "warning")] == [], found
    assert code == 0
    assert main(["lint", str(root), "--strict"]) == 0
