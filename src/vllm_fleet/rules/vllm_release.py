"""Rules about what the pinned vLLM release accepts: parsers, flags and their choices, and the
environment variables it still reads (the release table, vllm_releases.yml)."""

from __future__ import annotations

import difflib
from typing import Iterator

from vllm_fleet.rules.base import ERROR, INFO, WARNING, Finding, HostView, Rule
from vllm_fleet.serving import profiles, releases
from vllm_fleet.serving.args import serve_args
from vllm_fleet.suggest import suggest


def _version(h: HostView) -> str:
    return str(h.cfg["image"].get("vllm_version") or "0")


def _profile_env(h: HostView) -> dict:
    return profiles.catalogue()["profiles"][h.cfg["name"]].get("env") or {}


def _names_in(kind: str, version: str) -> list[str]:
    """The names of a kind (tool_call_parsers, reasoning_parsers, speculative_methods) that the
    release accepts."""
    return [name for name, spec in releases.releases()[kind].items() if releases.available_in(spec, version)]


def _unknown_name(kind: str, what: str, name: str, version: str) -> str:
    spec = releases.releases()[kind].get(name)
    if spec is not None:  # known to vLLM, not to this release
        bound = f"from vLLM {spec['since']}" if "since" in spec else f"until vLLM {spec['until']}"
        return f"the {what} {name!r} exists only {bound}, and the pinned image has vLLM {version}"
    return f"there is no {what} named {name!r}"


def check_reasoning_parser(h: HostView) -> Iterator[Finding]:
    parser = h.cfg["serving"].get("reasoning_parser")
    version = _version(h)
    known = _names_in("reasoning_parsers", version)
    if h.cfg["model"].get("reasoning") and not parser:
        yield ("vllm_fleet_overrides.serving.reasoning_parser",
               "this is a reasoning model: without reasoning_parser: qwen3, <think>...</think> leaks into content; set it")
    elif parser and parser not in known:
        yield ("vllm_fleet_overrides.serving.reasoning_parser",
               _unknown_name("reasoning_parsers", "reasoning parser", parser, version) + suggest(parser, known))


def check_tool_parser(h: HostView) -> Iterator[Finding]:
    serving = h.cfg["serving"]
    parser = serving.get("tool_call_parser")
    version = _version(h)
    known = _names_in("tool_call_parsers", version)
    if parser and parser not in known:
        # For this model the recipe's parser, whatever the nearest spelling (qwen3 is not one).
        hint = "; use qwen3_coder, as vLLM's recipe does" if parser.startswith("qwen3") else (
            suggest(parser, known) or f"; use one of {', '.join(known)}")
        yield ("vllm_fleet_overrides.serving.tool_call_parser",
               _unknown_name("tool_call_parsers", "tool call parser", parser, version) + hint)
    if serving.get("enable_auto_tool_choice") and not parser:
        yield ("vllm_fleet_overrides.serving.enable_auto_tool_choice",
               "enable_auto_tool_choice needs tool_call_parser (vLLM refuses to start without it); set qwen3_coder")


MTP_METHODS = ("mtp", "qwen3_next_mtp", "qwen3_5_mtp")


def check_draft_moe_backend(h: HostView) -> Iterator[Finding]:
    """MTP drafts copy the main model's MoE backend (vllm 0.28.0: v1/spec_decode/llm_base_proposer.py);
    this checkpoint's MTP layers are unquantized, and the unquantized MoE path refuses marlin
    (model_executor/layers/fused_moe/oracle/unquantized.py): a start-time ValueError, vllm issue
    #56832, fix PR #56964 unreleased. The recipe and NVIDIA's playbook name a draft backend."""
    serving = h.cfg["serving"]
    spec = serving.get("speculative_config") or {}
    if (spec.get("method") in MTP_METHODS and serving.get("moe_backend") == "marlin"
            and not h.cfg["model"].get("mtp_quantized", False) and spec.get("moe_backend") in (None, "marlin")):
        yield ("vllm_fleet_overrides.serving.speculative_config.moe_backend",
               "MTP with moe_backend marlin and no draft MoE backend fails at start: the unquantized MTP layers "
               "inherit marlin, which refuses unquantized MoE (vllm issue #56832). Add moe_backend: triton to "
               "speculative_config, as vLLM's recipe and NVIDIA's playbook do")


def check_hybrid_chunked_prefill(h: HostView) -> Iterator[Finding]:
    """Models with linear-attention layers need chunked prefill when prefix caching is on, on
    every GPU: vLLM 0.28.0 asserts it at start (model_executor/models/config.py)."""
    serving = h.cfg["serving"]
    if h.cfg["model"].get("hybrid") and serving.get("enable_prefix_caching") is not False \
            and serving.get("enable_chunked_prefill") is False:
        yield ("vllm_fleet_overrides.serving.enable_chunked_prefill",
               f"{h.cfg['model']['id']} has linear-attention layers: with prefix caching on, vLLM refuses to start "
               f"without chunked prefill. Set enable_chunked_prefill: true (or enable_prefix_caching: false)")


def check_speculative_config(h: HostView) -> Iterator[Finding]:
    """The method and every key of --speculative-config against the pinned release: vLLM builds
    a SpeculativeConfig that refuses unknown keys from 0.16.0 on (wheel vllm/config/utils.py)."""
    spec = h.cfg["serving"].get("speculative_config") or {}
    version = _version(h)
    method = spec.get("method")
    known = _names_in("speculative_methods", version)
    if method is not None and method not in known:
        yield ("vllm_fleet_overrides.serving.speculative_config.method",
               _unknown_name("speculative_methods", "speculative method", str(method), version)
               + (suggest(str(method), known) or "; this checkpoint uses mtp"))
    keys = releases.releases()["speculative_config_keys"]
    for key in sorted(spec):
        if key not in keys or not releases.available_in(keys[key], version):
            yield (f"vllm_fleet_overrides.serving.speculative_config.{key}",
                   _unknown_name("speculative_config_keys", "speculative config key", key, version)
                   + "; vLLM refuses unknown keys at start")


def _flag_values(args: list[str]) -> Iterator[tuple[str, str | None]]:
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            name, _, inline = arg.partition("=")
            value = inline or (args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else None)
            yield name, value


def check_flags_for_version(h: HostView) -> Iterator[Finding]:
    version = _version(h)
    table = releases.releases()["flags"]
    for flag, value in _flag_values(serve_args(h.cfg)):
        spec = table.get(flag)
        if spec is None:
            # A high bar: real flags missing from the table (--data-parallel-size is 0.81 from
            # --tensor-parallel-size) must not read as typos.
            near = difflib.get_close_matches(flag, list(table), n=1, cutoff=0.85)
            if near:
                # A near miss of a flag vLLM has is a typo: vLLM exits 2 on an unknown argument.
                yield ("vllm_fleet_overrides.serving.extra_args",
                       f"{flag} is not a vLLM flag; did you mean {near[0]!r}? vLLM {version} refuses unknown "
                       f"arguments at start")
            else:
                yield ("vllm_fleet_overrides.serving.extra_args",
                       f"{flag} is not in vllm-fleet's table of vLLM flags, so it cannot be vouched for on vLLM "
                       f"{version}; check `vllm serve --help` of that image", WARNING)
            continue
        if not releases.available_in(spec, version):
            bound = f"needs vLLM >= {spec['since']}" if "since" in spec else f"was removed in vLLM {spec['until']}"
            yield "vllm_fleet_overrides.serving", f"{flag} {bound} but the pinned image has vLLM {version}; drop it or pin a newer image"
        elif spec.get("choices") and value is not None and value not in spec["choices"]:
            yield ("vllm_fleet_overrides.serving",
                   f"{flag} {value!r} is not a valid choice{suggest(value, spec['choices'])} (valid: {', '.join(spec['choices'])})")
        elif value in (spec.get("choices_since") or {}) and not releases.available_in(
                {"since": spec["choices_since"][value]}, version):
            yield ("vllm_fleet_overrides.serving",
                   f"{flag} {value!r} needs vLLM >= {spec['choices_since'][value]} but the pinned image has vLLM {version}")


def check_env_for_version(h: HostView) -> Iterator[Finding]:
    version = _version(h)
    table = releases.releases()["env"]
    catalogue_env = _profile_env(h)
    env = h.cfg.get("env") or {}
    for var in sorted(env):
        spec = table.get(var)
        where = f"vllm_fleet_overrides.env.{var}"
        # A dead variable the catalogue keeps on purpose (the seed's Spark trio, documented there)
        # is a note; one an inventory adds is more likely a mistake, so it warns.
        severity = INFO if catalogue_env.get(var) == env[var] else WARNING
        kept = " (kept from the profile's source; it has no effect)" if severity == INFO else ""
        if spec is None:
            if var.startswith("VLLM_"):
                yield (where, f"{var} is not a vLLM environment variable: vLLM {version} ignores it "
                              f"(logs \"Unknown vLLM environment variable detected\"){kept}", severity)
        elif spec.get("reader") not in (None, "vllm"):
            yield where, f"{var} is read by {spec['reader']}, not by vLLM", INFO
        elif not releases.available_in(spec, version):
            yield where, f"{var} is not read by vLLM {version} (removed in {spec.get('until')}){kept or '; it has no effect'}", severity


RULES: tuple[Rule, ...] = (
    Rule("VF303", ERROR, "reasoning parser set and known", check_reasoning_parser),
    Rule("VF304", ERROR, "tool parser exists", check_tool_parser),
    Rule("VF305", ERROR, "flags valid for the pinned vLLM version", check_flags_for_version),
    Rule("VF306", WARNING, "env vars read by the pinned vLLM version", check_env_for_version),
    Rule("VF309", ERROR, "MTP draft MoE backend with marlin", check_draft_moe_backend),
    Rule("VF310", ERROR, "chunked prefill with prefix caching for hybrid models", check_hybrid_chunked_prefill),
    Rule("VF311", ERROR, "speculative method and config keys known to the pinned vLLM", check_speculative_config),
)
