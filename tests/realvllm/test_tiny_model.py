"""The scripted tiny Qwen3 checkpoints behave as scripted under transformers' greedy decoding.

Runs transformers inside the real-vLLM venv (the product venv has no torch). One subprocess
checks both architectures; the dense model is what real vLLM serves in the other modules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.realvllm.support import run_in_venv

pytestmark = pytest.mark.realvllm

CHECKER = Path(__file__).resolve().parent / "in_venv" / "generate.py"
THINKING = "The user asks.</think>\n\n4<|im_end|>"
PLAIN = "4<|im_end|>"


@pytest.fixture(scope="module")
def results(venv_python: Path, tiny_models: dict[str, Path]) -> dict[str, Any]:
    proc = run_in_venv(venv_python, [str(CHECKER), *(str(p) for p in tiny_models.values())], timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    by_dir = json.loads(proc.stdout)
    return {arch: by_dir[str(path)] for arch, path in tiny_models.items()}


@pytest.mark.parametrize("arch", ["dense", "moe"])
def test_architecture(results: dict[str, Any], arch: str) -> None:
    expected = {"dense": "Qwen3ForCausalLM", "moe": "Qwen3MoeForCausalLM"}[arch]
    assert results[arch]["architectures"] == [expected]


@pytest.mark.parametrize("arch", ["dense", "moe"])
def test_generation_prompts(results: dict[str, Any], arch: str) -> None:
    prompts = results[arch]["prompts"]
    assert prompts["thinking_on"].endswith("<|im_start|>assistant\n<think>\n")
    assert prompts["thinking_on_explicit"] == prompts["thinking_on"]
    assert prompts["thinking_off"].endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert "<tools>" in prompts["tools_thinking_on"] and '"get_weather"' in prompts["tools_thinking_on"]
    assert prompts["conversation_thinking_off"].startswith("<|im_start|>system\nBe brief.<|im_end|>\n")


@pytest.mark.parametrize("arch", ["dense", "moe"])
@pytest.mark.parametrize("case,expected", [
    ("thinking_on", THINKING),
    ("thinking_on_explicit", THINKING),
    ("tools_thinking_on", THINKING),
    ("thinking_off", PLAIN),
    ("conversation_thinking_off", PLAIN),
])
def test_greedy_follows_script(results: dict[str, Any], arch: str, case: str, expected: str) -> None:
    assert results[arch]["outputs"][case] == expected


@pytest.mark.parametrize("arch", ["dense", "moe"])
def test_unscripted_loops_on_filler(results: dict[str, Any], arch: str) -> None:
    assert results[arch]["outputs"]["unscripted"] == " filler" * 12


@pytest.mark.parametrize("arch", ["dense", "moe"])
def test_tokenizer_round_trips_and_added_tokens(results: dict[str, Any], arch: str) -> None:
    r = results[arch]
    assert r["roundtrip_count"] >= 50 and r["roundtrip_failures"] == []
    # One token each, as the script (keyed on the last token) needs.
    assert all(len(ids) == 1 for ids in r["single_tokens"].values()), r["single_tokens"]
    assert r["single_tokens"]["\n"] != r["single_tokens"]["\n\n"]
    assert set(r["special"]) == {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
