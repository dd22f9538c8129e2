"""`vllm-fleet bench` against the lab's vLLM stand-in: JSON shape, and the stand-in label on
every printed figure (its numbers are simulated, never GPU figures)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.standin_server import STANDIN, standin
from vllm_fleet import cli
from vllm_fleet.bench import load as bench

REPO = Path(__file__).resolve().parents[2]
MODEL = "nvidia/Qwen3.6-35B-A3B-NVFP4"
LEVEL_KEYS = {"concurrency", "requests", "failed", "output_tokens", "duration_s", "output_tok_s", "ttft_p50_s",
              "ttft_p95_s", "itl_p50_s", "itl_p95_s", "spec_acceptance", "first_error"}


@pytest.fixture(scope="module")
def standin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A stand-in serving the blackwell profile (MTP speculative decoding) at max_model_len 4096."""
    if not STANDIN.exists():
        pytest.skip(f"the vLLM stand-in is not at {STANDIN}")
    with standin(tmp_path_factory.mktemp("standin"), profile="blackwell") as url:
        yield url


def test_tiny_sweep_against_the_standin(standin_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = cli.main(["bench", "--url", standin_url, "--model", MODEL, "--concurrency", "1,2",
                       "--requests-per-level", "4", "--max-tokens", "16", "--json", str(out), "--compare-seed",
                       "--plot", str(tmp_path / "bench.png")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    doc = json.loads(out.read_text())
    assert doc["standin"] is True and doc["label"] == bench.STANDIN_LABEL
    assert [lv["concurrency"] for lv in doc["levels"]] == [1, 2]
    for level in doc["levels"]:
        assert set(level) == LEVEL_KEYS
        assert (level["requests"], level["failed"], level["output_tokens"]) == (4, 0, 64)
        assert level["output_tok_s"] > 0 and 0 < level["ttft_p50_s"] <= level["ttft_p95_s"]
        assert 0 < level["spec_acceptance"] <= 1
    assert doc["seed_comparison"][0]["figure"] == "output tok/s at concurrency 1"
    # Every printed line that carries a measured figure says it is a stand-in figure.
    figure_lines = [ln for ln in printed.splitlines() if re.match(r"\s+\d+\s+\d+/\d+", ln) or " vs seed " in ln]
    assert len(figure_lines) == 2 + 2  # two levels, tok/s at concurrency 1 and acceptance vs the seed
    assert all(bench.STANDIN_LABEL in ln for ln in figure_lines), printed
    assert "STAND-IN" in printed.splitlines()[1]


def test_unreachable_server_is_a_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert cli.main(["bench", "--url", f"http://127.0.0.1:{port}", "--model", MODEL, "--concurrency", "1"]) == 2
    assert "cannot reach" in capsys.readouterr().err


def test_percentiles_and_levels() -> None:
    assert bench.percentile([], 50) is None
    assert bench.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert bench.percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert bench.parse_levels("1,8,32") == [1, 8, 32]
    with pytest.raises(Exception, match="like 1,8,32"):
        bench.parse_levels("one")


def test_seed_comparison_ratios() -> None:
    level = bench.summarize_level(1, [bench.RequestResult(ok=True, output_tokens=559, ttft_s=0.1)], 10.0,
                                  (0.0, 0.0), (854.0, 1000.0))
    rows = bench.seed_comparison([level], 512)
    assert rows[0]["ratio"] == pytest.approx(1.0)
    assert rows[1]["figure"] == "speculative acceptance" and rows[1]["ratio"] == pytest.approx(1.0)
