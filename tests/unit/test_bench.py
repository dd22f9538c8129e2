"""`vllm-fleet bench` against the lab's vLLM stand-in: JSON shape, the stand-in label on every
printed figure (its numbers are simulated, never GPU figures), a line per level as it finishes,
every check that can refuse a run done before any load, and a plot people can read."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.standin_server import STANDIN, standin
from vllm_fleet import cli
from vllm_fleet.bench import load as bench
from vllm_fleet.bench import plot

REPO = Path(__file__).resolve().parents[2]
MODEL = "nvidia/Qwen3.6-35B-A3B-NVFP4"
LEVEL_KEYS = {"concurrency", "requests", "failed", "output_tokens", "duration_s", "output_tok_s", "ttft_p50_s",
              "ttft_p95_s", "itl_p50_s", "itl_p95_s", "spec_acceptance", "first_error"}
ROW = re.compile(r"\s+\d+\s+\d+/\d+")


@pytest.fixture(scope="module")
def standin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A stand-in serving the blackwell profile (MTP speculative decoding) at max_model_len 4096."""
    if not STANDIN.exists():
        pytest.skip(f"the vLLM stand-in is not at {STANDIN}")
    with standin(tmp_path_factory.mktemp("standin"), profile="blackwell") as url:
        yield url


@pytest.fixture(scope="module")
def slow_standin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A stand-in at 20 ms a token, so a level lasts long enough to be watched from outside."""
    if not STANDIN.exists():
        pytest.skip(f"the vLLM stand-in is not at {STANDIN}")
    with standin(tmp_path_factory.mktemp("slow"), profile="blackwell",
                 env={"VLLM_STANDIN_TOKEN_SECONDS": "0.02"}) as url:
        yield url


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def bench_argv(url: str, *extra: str) -> list[str]:
    return ["bench", "--url", url, "--model", MODEL, *extra]


def test_tiny_sweep_against_the_standin(standin_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    code = cli.main(bench_argv(standin_url, "--concurrency", "1,2", "--requests-per-level", "4", "--max-tokens", "16",
                               "--json", str(out), "--compare-seed", "--plot", str(png)))
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0, printed + captured.err
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
    figure_lines = [ln for ln in printed.splitlines() if ROW.match(ln) or " vs seed " in ln]
    assert len(figure_lines) == 2 + 2  # two levels, tok/s at concurrency 1 and acceptance vs the seed
    assert all(bench.STANDIN_LABEL in ln for ln in figure_lines), printed
    assert "STAND-IN" in printed.splitlines()[1]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot written to {png}" in printed
    assert "\r" not in captured.err  # no progress bar when nobody watches a terminal


def test_unreachable_server_is_a_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(bench_argv(dead_url(), "--concurrency", "1")) == 2
    assert "cannot reach" in capsys.readouterr().err


# --- refused before any load --------------------------------------------------------------------
# Against a dead URL: a refusal that names the output or matplotlib (not "cannot reach") was
# decided before the server was contacted.

@pytest.mark.parametrize("flag, name, says", [
    ("--plot", "missing/bench.png", "the directory {dir}/missing does not exist; create it"),
    ("--json", "missing/bench.json", "the directory {dir}/missing does not exist; create it"),
    ("--plot", "bench.svg", "--plot writes a PNG file; name it with .png"),
    ("--plot", ".", "is a directory; name a file in it"),
])
def test_output_paths_are_checked_before_load(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str,
                                              name: str, says: str) -> None:
    assert cli.main(bench_argv(dead_url(), flag, str(tmp_path / name))) == 2
    err = capsys.readouterr().err
    assert says.format(dir=tmp_path) in err and "Nothing was sent to the server." in err, err
    assert "cannot reach" not in err and "internal error" not in err


def test_a_url_without_scheme_is_a_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(bench_argv("gpu1:8000")) == 2
    assert "--url 'gpu1:8000' needs its scheme, like http://gpu1:8000" in capsys.readouterr().err


def test_plot_without_matplotlib_is_refused_before_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert cli.main(bench_argv(dead_url(), "--plot", str(tmp_path / "bench.png"))) == 2
    err = capsys.readouterr().err
    assert "pip install 'vllm-fleet[bench]'" in err and "cannot reach" not in err, err


def test_a_model_the_server_does_not_serve_sends_nothing(standin_url: str, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    sent: list[str] = []
    real = bench.one_request

    async def counting(client, model, max_tokens):  # type: ignore[no-untyped-def]
        sent.append(model)
        return await real(client, model, max_tokens)

    monkeypatch.setattr(bench, "one_request", counting)
    argv = ["bench", "--url", standin_url, "--model", "Qwen/Qwen3.6-35B-A3B", "--concurrency", "2", "--max-tokens", "4"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"serves '{MODEL}', not 'Qwen/Qwen3.6-35B-A3B'; pass --model with a served id" in err, err
    assert sent == []


def test_the_concurrency_reported_is_the_concurrency_sent(standin_url: str, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    in_flight, peaks = 0, []

    async def fake(client, model, max_tokens):  # type: ignore[no-untyped-def]
        nonlocal in_flight
        in_flight += 1
        peaks.append(in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return bench.RequestResult(ok=True, output_tokens=max_tokens, ttft_s=0.01, itls_s=[0.01])

    monkeypatch.setattr(bench, "one_request", fake)
    assert cli.main(bench_argv(standin_url, "--concurrency", "1,16", "--requests-per-level", "4")) == 0
    printed = capsys.readouterr().out
    rows = [ln.split() for ln in printed.splitlines() if ROW.match(ln)]
    assert [(r[0], r[1]) for r in rows] == [("1", "4/4"), ("16", "16/16")]
    assert max(peaks) == 16
    assert "note: level 16 sends 16 requests, not --requests-per-level 4" in printed
    assert bench.requests_for_level(16, None) == 32 and bench.requests_for_level(1, None) == 8


# --- while it runs ----------------------------------------------------------------------------------

def _cli_command(*argv: str) -> list[str]:
    return [sys.executable, "-c", f"import sys; from vllm_fleet.cli import main; sys.exit(main({list(argv)!r}))"]


def test_each_level_is_printed_as_soon_as_it_finishes(slow_standin_url: str) -> None:
    """Through a pipe (block-buffered unless flushed), as `vllm-fleet bench ... | tee` would be:
    level 1's line arrives while level 2 (4 requests of 10 tokens at 20 ms, two at a time, so
    at least 0.4 s) still runs, not together with it at the end."""
    cmd = _cli_command(*bench_argv(slow_standin_url, "--concurrency", "1,2", "--requests-per-level", "4",
                                   "--max-tokens", "10"))
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    arrived: dict[str, float] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if ROW.match(line):
                arrived[line.split()[0]] = time.monotonic()
    finally:
        proc.wait(60)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert set(arrived) == {"1", "2"}
    assert arrived["2"] - arrived["1"] > 0.3, arrived


def test_a_terminal_gets_a_progress_bar(slow_standin_url: str) -> None:
    master, child = pty.openpty()
    proc = subprocess.Popen(_cli_command(*bench_argv(slow_standin_url, "--concurrency", "2", "--requests-per-level",
                                                     "4", "--max-tokens", "10")),
                            cwd=REPO, stdin=subprocess.DEVNULL, stdout=child, stderr=child)
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(30) == 0
    screen = b"".join(chunks).decode()
    assert "\r\x1b[Klevel 2 [" in screen and "4/4 requests" in screen, screen
    # The bar is erased before the level's line, which therefore starts a line of its own.
    assert re.search(r"\r\x1b\[K {10}2 +4/4 ", screen), screen


# --- the plot ---------------------------------------------------------------------------------------

def _levels() -> list[bench.LevelResult]:
    def level(c: int, tok: float, ttft: tuple[float, float], itl: tuple[float, float]) -> bench.LevelResult:
        return bench.LevelResult(c, 2 * c, 0, int(tok * 10), 10.0, tok, *ttft, *itl, 0.85)

    return [level(1, 55.9, (0.08, 0.12), (0.017, 0.025)), level(8, 230.0, (0.15, 0.4), (0.03, 0.045)),
            level(32, 433.4, (0.9, 2.5), (0.06, 0.095))]


def _texts(fig) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text")))


@pytest.mark.parametrize("standin_server", [True, False])
def test_the_plot_reads_as_people_want(standin_server: bool) -> None:
    pytest.importorskip("matplotlib")
    info = plot.PlotInfo(model=MODEL, url="http://h100-01:8000", max_tokens=512, standin=standin_server)
    fig = plot.build_figure(_levels(), info)
    tok, ttft, itl = fig.axes
    for ax in (tok, ttft, itl):
        assert ax.get_xscale() == "linear"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "8", "32"]  # the levels, not 10^0/10^1
        assert ax.get_ylim()[0] == 0
    assert tok.get_ylim()[1] > 433.4
    # TTFT and ITL on axes of their own, each with p50 and p95.
    assert "TTFT" in ttft.get_title() and "ITL" in itl.get_title()
    for ax, top_p50_ms, top_p95_ms in ((ttft, 900.0, 2500.0), (itl, 60.0, 95.0)):
        lines = {ln.get_label(): list(ln.get_ydata()) for ln in ax.get_lines()}
        assert set(lines) == {"p50", "p95"}
        assert max(lines["p50"]) == pytest.approx(top_p50_ms) and max(lines["p95"]) == pytest.approx(top_p95_ms)
    title = fig._suptitle.get_text()
    assert MODEL in title and "http://h100-01:8000" in title and "max_tokens 512" in title
    assert (plot.STANDIN_BANNER in _texts(fig)) is standin_server


def test_plot_png_against_the_standin(standin_url: str, tmp_path: Path) -> None:
    """The PNG a person looks at (kept under the test's tmp_path)."""
    png = tmp_path / "bench.png"
    assert cli.main(bench_argv(standin_url, "--concurrency", "1,4,8", "--max-tokens", "32", "--plot", str(png))) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 1200 and height > 500


# --- arithmetic -----------------------------------------------------------------------------------

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


def test_a_release_is_the_lab_inventory_with_the_digest_changed_where_it_is_pinned(tmp_path) -> None:
    from benchmarks.bench_availability import release_inventory

    old, new = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    (inv / "group_vars" / "all" / "offline.yml").write_text(f"vllm_fleet_overrides:\n  image:\n    digest: {old}\n")
    (inv / "host_vars" / "h4.yml").write_text(f"vllm_fleet_overrides:\n  image:\n    digest: {old}\n    cuda_major: 12\n")
    copy = release_inventory(inv, old, new, tmp_path / "release")
    assert (copy / "host_vars" / "h4.yml").read_text().endswith(f"digest: {new}\n    cuda_major: 12\n")
    assert new in (copy / "group_vars" / "all" / "offline.yml").read_text()
    assert old in (inv / "host_vars" / "h4.yml").read_text(), "the lab's own inventory changed"
    with pytest.raises(RuntimeError, match="no file of .* pins"):
        release_inventory(inv, "sha256:" + "c" * 64, new, tmp_path / "again")
