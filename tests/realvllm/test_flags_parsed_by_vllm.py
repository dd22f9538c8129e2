"""Every profile's rendered `vllm serve` arguments are accepted by real vLLM's own parser.

The arguments are rendered here (product venv) and parsed inside the real-vLLM venv by
lab/real-vllm/parse_serve_args.py, which builds the parser exactly as `vllm` does
(ServeSubcommand.subparser_init -> make_arg_parser) and runs validate_parsed_serve_args;
no server starts. The installed vLLM is 0.32.0 while the profiles pin another release, so
flags whose availability could differ between the two (per vllm_releases.yml) are reported
as "not vouched for" rather than silently passed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.realvllm.support import REPO, VLLM_VERSION
from vllm_fleet.serving.profiles import profile_names, resolve_serving
from vllm_fleet.serving.releases import available_in, releases, version_tuple
from vllm_fleet.serving.args import flags_of, serve_args

pytestmark = pytest.mark.realvllm

REPORT = REPO / ".lab" / "real-vllm" / "flag-vouching.json"
# Flags whose values are names with their own bounds in vllm_releases.yml.
VALUE_LISTS = {"--tool-call-parser": "tool_call_parsers", "--reasoning-parser": "reasoning_parsers",
               "--speculative-config": "speculative_methods"}


@pytest.fixture(scope="module")
def parsed(parsed_by_vllm: dict[str, Any]) -> dict[str, Any]:
    return parsed_by_vllm


def unvouched(args: list[str], pinned: str, checked: str = VLLM_VERSION) -> dict[str, str]:
    """Flags of `args` whose acceptance by `checked` says nothing certain about `pinned`."""
    lo, hi = sorted((version_tuple(pinned), version_tuple(checked)))
    specs = releases()["flags"]
    out = {}
    for flag in dict.fromkeys(flags_of(args)):
        spec = specs.get(flag)
        if spec is None:
            out[flag] = "not in vllm_releases.yml: availability per version unknown"
            continue
        if available_in(spec, pinned) != available_in(spec, checked):
            out[flag] = f"available in {checked} but not in {pinned} (or the reverse): {spec}"
            continue
        for bound in ("since", "until"):
            if bound in spec and lo < version_tuple(spec[bound]) <= hi:
                out[flag] = f"{bound} {spec[bound]} lies between {pinned} and {checked}"
        if "choices" in spec and flag not in out:
            # vllm_releases.yml records one choice list, not one per version.
            out[flag] = f"name vouched; value choices recorded for one version only: {spec['choices']}"
        if flag in VALUE_LISTS and flag not in out:
            # The value was checked against this vLLM's registry; its bounds in vllm_releases.yml
            # are held to the wheels of both releases by tests/unit/test_release_table.py.
            out[flag] = f"name vouched; value's bounds in {VALUE_LISTS[flag]} (wheel facts), parsed here by {checked}"
    return out


@pytest.mark.parametrize("name", profile_names())
def test_profile_args_parse(parsed: dict[str, Any], name: str, record_property: Any) -> None:
    serving = resolve_serving(name)
    args = serve_args(serving)
    result = parsed[f"profile:{name}"]
    assert result["ok"], f"vLLM {VLLM_VERSION} rejects profile {name!r}: {result}\nargs: {args}"
    pinned = str(serving["image"]["vllm_version"])
    caveats = unvouched(args, pinned) if pinned != VLLM_VERSION else {}
    record_property("vouched_by", f"vllm {VLLM_VERSION} (profile pins {pinned})")
    record_property("not_vouched", json.dumps(caveats, sort_keys=True))
    print(f"\n[{name}] parsed by vLLM {VLLM_VERSION}; profile pins {pinned}; not vouched for:")
    for flag, why in caveats.items() or [("(none)", "")]:
        print(f"  {flag}: {why}")
    report = json.loads(REPORT.read_text()) if REPORT.is_file() else {}
    report[name] = {"pinned": pinned, "checked": VLLM_VERSION, "args": args, "not_vouched": caveats}
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")


def test_profile_values_as_vllm_sees_them(parsed: dict[str, Any]) -> None:
    # Spot-check that parsing kept the meaning (JSON flags become dicts, booleans set).
    spark = parsed["profile:spark"]["parsed"]
    assert spark["speculative_config"]["method"] == "mtp"
    assert spark["kv_cache_dtype"] == "fp8" and spark["reasoning_parser"] == "qwen3"
    assert spark["enable_chunked_prefill"] is True


def test_lab_serve_command_parses(parsed: dict[str, Any]) -> None:
    assert parsed["lab:serve.py"]["ok"], parsed["lab:serve.py"]


def test_unknown_flag_rejected(parsed: dict[str, Any]) -> None:
    r = parsed["unknown-flag"]
    assert (r["ok"], r["stage"], r["exit_code"]) == (False, "argparse", 2)
    assert r["error"] == "vllm: error: unrecognized arguments: --bogus-flag 1"


@pytest.mark.parametrize("case,stage,needle", [
    ("bad-choice", "argparse", "vllm serve: error: argument --kv-cache-dtype: invalid choice: 'fp9'"),
    ("auto-tool-without-parser", "validate",
     "TypeError: Error: --enable-auto-tool-choice requires --tool-call-parser"),
    ("tool-parser-named-qwen3", "setup_server", "KeyError: 'invalid tool call parser: qwen3 (chose from {"),
    ("bogus-reasoning-parser", "parser_lookup", "KeyError: \"Reasoning parser 'bogus' not found."),
])
def test_invalid_values_rejected(parsed: dict[str, Any], case: str, stage: str, needle: str) -> None:
    r = parsed[case]
    assert not r["ok"] and r["stage"] == stage and needle in r["error"], r
