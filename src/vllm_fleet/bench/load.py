"""`vllm-fleet bench`: a small serving benchmark of one instance (streaming chat requests).

For each concurrency level it sends a fixed number of streaming chat completions and reports
output tokens/s, time to first token and inter-token latency (p50/p95), and the speculative
acceptance rate from /metrics deltas. guidellm (vLLM's benchmark tool) was evaluated and not
used: version 0.8.1 requires torch, transformers and datasets (97 packages, ~2.8 GiB of wheels
with torch's CUDA libraries) for what is here an asyncio loop over httpx.

A server that is the lab's stand-in (its /metrics says so, or --standin) gets every printed
figure labelled: those numbers are simulated and say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from vllm_fleet.smoke.parsers import describe_response, is_standin_metrics, spec_counters

STANDIN_LABEL = "STAND-IN figure, not a GPU figure"
# The seed article's published figures for this model (tok/s by concurrency, MTP acceptance
# measured with 512-token outputs).
SEED_TOK_S = {1: 55.9, 32: 433.4}
SEED_ACCEPTANCE = 0.854
SEED_ACCEPTANCE_MAX_TOKENS = 512
PROMPT = "Write a detailed, step-by-step explanation of how a refrigerator keeps food cold."


@dataclass
class RequestResult:
    ok: bool
    output_tokens: int = 0
    ttft_s: float | None = None
    itls_s: list[float] = field(default_factory=list)
    error: str = ""


@dataclass
class LevelResult:
    concurrency: int
    requests: int
    failed: int
    output_tokens: int
    duration_s: float
    output_tok_s: float
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    itl_p50_s: float | None
    itl_p95_s: float | None
    spec_acceptance: float | None
    first_error: str = ""


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), None for no values."""
    if not values:
        return None
    data = sorted(values)
    rank = (len(data) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return data[low] + (data[high] - data[low]) * (rank - low)


def parse_levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--concurrency takes numbers separated by commas, like 1,8,32; got {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("--concurrency levels must be 1 or more")
    return levels


def requests_for_level(level: int, per_level: int | None) -> int:
    """Requests sent at a level: --requests-per-level (default max(8, 2 x level)), but never
    fewer than the level itself, or fewer than `level` requests would ever be in flight and the
    level reported would not be the concurrency measured."""
    return max(per_level, level) if per_level else max(8, 2 * level)


# --- progress ----------------------------------------------------------------------------------

class Progress:
    """`level 8 [#####.......] 5/16 requests, 12 s` on one line, redrawn in place.

    Only for a person at a terminal (see `for_terminal`): in a pipe or a log the carriage
    returns would be garbage, and the per-level lines already say everything.
    """

    WIDTH = 24

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.level = self.done = self.total = 0
        self.started = time.perf_counter()
        self.shown = False

    @classmethod
    def for_terminal(cls) -> Progress | None:
        # stdout a terminal: a person is watching the table; stderr one: \r redraws in place there.
        return cls(sys.stderr) if sys.stdout.isatty() and sys.stderr.isatty() else None

    def start(self, level: int, total: int) -> None:
        self.level, self.done, self.total, self.started = level, 0, total, time.perf_counter()
        self.draw()

    def request_done(self) -> None:
        self.done += 1
        self.draw()

    def draw(self) -> None:
        filled = self.WIDTH * self.done // max(1, self.total)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r\033[Klevel {self.level} [{bar}] {self.done}/{self.total} requests, "
                          f"{time.perf_counter() - self.started:.0f} s")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the line before anything else is printed, so the two never share a line."""
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


# --- one request -------------------------------------------------------------------------------

def _token_bearing(chunk: dict) -> bool:
    """Whether an SSE chunk carries generated text (reasoning, content or a tool call)."""
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("reasoning") or delta.get("reasoning_content") or delta.get("tool_calls"):
            return True
    return False


async def one_request(client: httpx.AsyncClient, model: str, max_tokens: int) -> RequestResult:
    # ignore_eos makes every request generate max_tokens, so levels compare like with like.
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": max_tokens,
            "stream": True, "stream_options": {"include_usage": True}, "ignore_eos": True}
    start = time.perf_counter()
    last: float | None = None
    result = RequestResult(ok=False)
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
            if resp.status_code != 200:
                await resp.aread()
                result.error = describe_response(resp)
                return result
            async for line in resp.aiter_lines():
                if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                    continue
                chunk = json.loads(line[5:])
                if "error" in chunk:
                    result.error = str(chunk["error"].get("message", chunk["error"]))
                    return result
                now = time.perf_counter()
                if _token_bearing(chunk):
                    if last is None:
                        result.ttft_s = now - start
                    else:
                        result.itls_s.append(now - last)
                    last = now
                if chunk.get("usage"):
                    result.output_tokens = int(chunk["usage"].get("completion_tokens") or 0)
    except httpx.HTTPError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    result.ok = result.ttft_s is not None
    result.error = "" if result.ok else "the stream carried no tokens"
    return result


# --- one level ---------------------------------------------------------------------------------

async def _metrics_text(client: httpx.AsyncClient) -> str:
    try:
        resp = await client.get("/metrics")
    except httpx.HTTPError:
        return ""
    return resp.text if resp.status_code == 200 else ""


async def run_level(client: httpx.AsyncClient, model: str, concurrency: int, requests: int,
                    max_tokens: int, progress: Progress | None = None) -> LevelResult:
    """`requests` requests with exactly `concurrency` of them in flight until the queue runs
    dry (callers give requests >= concurrency; see requests_for_level)."""
    before = spec_counters(await _metrics_text(client))
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    results: list[RequestResult] = []

    async def worker() -> None:
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            results.append(await one_request(client, model, max_tokens))
            if progress:
                progress.request_done()

    async def tick() -> None:  # the elapsed seconds move even while no request finishes
        while True:
            await asyncio.sleep(1.0)
            progress.draw()  # type: ignore[union-attr]

    if progress:
        progress.start(concurrency, requests)
    ticker = asyncio.create_task(tick()) if progress else None
    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        duration = time.perf_counter() - start
        if ticker:
            ticker.cancel()
        if progress:
            progress.clear()
    after = spec_counters(await _metrics_text(client))
    return summarize_level(concurrency, results, duration, before, after)


def summarize_level(concurrency: int, results: list[RequestResult], duration: float,
                    before: tuple[float, float] | None, after: tuple[float, float] | None) -> LevelResult:
    good = [r for r in results if r.ok]
    ttfts = [r.ttft_s for r in good if r.ttft_s is not None]
    itls = [gap for r in good for gap in r.itls_s]
    tokens = sum(r.output_tokens for r in good)
    acceptance = None
    if before and after and after[1] > before[1]:
        acceptance = (after[0] - before[0]) / (after[1] - before[1])
    failed = [r for r in results if not r.ok]
    return LevelResult(
        concurrency=concurrency, requests=len(results), failed=len(failed), output_tokens=tokens,
        duration_s=duration, output_tok_s=tokens / duration if duration > 0 else 0.0,
        ttft_p50_s=percentile(ttfts, 50), ttft_p95_s=percentile(ttfts, 95),
        itl_p50_s=percentile(itls, 50), itl_p95_s=percentile(itls, 95),
        spec_acceptance=acceptance, first_error=failed[0].error if failed else "")


async def detect_standin(client: httpx.AsyncClient) -> bool:
    return is_standin_metrics(await _metrics_text(client))


# --- reporting ---------------------------------------------------------------------------------

def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


TABLE_HEADER = "concurrency  ok/requests  output tok/s  TTFT p50/p95 ms  ITL p50/p95 ms  spec acceptance"


def format_level(lv: LevelResult, standin: bool) -> list[str]:
    """One level's row of the table (plus a line on failures), printed as soon as it finishes."""
    suffix = f"   [{STANDIN_LABEL}]" if standin else ""
    acc = "-" if lv.spec_acceptance is None else f"{lv.spec_acceptance:.1%}"
    lines = [f"{lv.concurrency:>11}  {lv.requests - lv.failed:>5}/{lv.requests:<5}  {lv.output_tok_s:>12.1f}  "
             f"{_ms(lv.ttft_p50_s):>7}/{_ms(lv.ttft_p95_s):<7}  {_ms(lv.itl_p50_s):>6}/{_ms(lv.itl_p95_s):<7}  "
             f"{acc:>15}{suffix}"]
    if lv.failed:
        lines.append(f"{'':>11}  {lv.failed} request(s) failed, first: {lv.first_error[:160]}")
    return lines


def format_table(levels: list[LevelResult], standin: bool) -> list[str]:
    return [TABLE_HEADER] + [line for lv in levels for line in format_level(lv, standin)]


def seed_comparison(levels: list[LevelResult], max_tokens: int) -> list[dict[str, Any]]:
    """Ratios measured / seed for the figures the seed article published."""
    rows: list[dict[str, Any]] = []
    by_level = {lv.concurrency: lv for lv in levels}
    for conc, seed in SEED_TOK_S.items():
        if conc in by_level:
            measured = by_level[conc].output_tok_s
            rows.append({"figure": f"output tok/s at concurrency {conc}", "measured": measured, "seed": seed,
                         "ratio": measured / seed})
    accs = [lv.spec_acceptance for lv in levels if lv.spec_acceptance is not None]
    if accs:
        measured = sum(accs) / len(accs)
        note = "" if max_tokens == SEED_ACCEPTANCE_MAX_TOKENS else f" (seed used {SEED_ACCEPTANCE_MAX_TOKENS}-token outputs, this run {max_tokens})"
        rows.append({"figure": "speculative acceptance" + note, "measured": measured, "seed": SEED_ACCEPTANCE,
                     "ratio": measured / SEED_ACCEPTANCE})
    return rows


def format_comparison(rows: list[dict[str, Any]], levels: Sequence[int], standin: bool) -> list[str]:
    suffix = f"   [{STANDIN_LABEL}]" if standin else ""
    lines = ["compared with the seed article's figures:"]
    for row in rows:
        pct = "acceptance" in row["figure"]
        fmt = (lambda v: f"{v:.1%}") if pct else (lambda v: f"{v:.1f}")
        lines.append(f"  {row['figure']}: {fmt(row['measured'])} vs seed {fmt(row['seed'])} = {row['ratio']:.2f}x{suffix}")
    if not any(c in levels for c in SEED_TOK_S):
        lines.append("  (no level matches the seed's concurrency 1 or 32; add them to --concurrency)")
    return lines


class BenchError(Exception):
    """The benchmark could not run; the message says why and what to check."""


async def served_models(client: httpx.AsyncClient, url: str) -> list[str]:
    """The model ids /v1/models lists; BenchError (a sentence) when the server cannot say."""
    try:
        resp = await client.get("/v1/models")
    except httpx.TransportError as exc:
        raise BenchError(f"cannot reach {url} ({exc}); is the instance running?") from None
    if resp.status_code != 200:
        raise BenchError(f"{url}/v1/models answered {describe_response(resp)}; check --url and --api-key-file")
    try:
        return [str(m.get("id")) for m in resp.json().get("data") or []]
    except (ValueError, AttributeError):
        raise BenchError(f"{url}/v1/models did not answer a model list ({resp.text[:120]!r}); "
                         "is --url a vLLM server?") from None


async def run_bench(url: str, model: str, levels: list[int], per_level: int | None, max_tokens: int,
                    api_key: str | None, timeout: float, force_standin: bool, *,
                    on_ready: Callable[[bool], None] | None = None,
                    on_level: Callable[[LevelResult], None] | None = None,
                    progress: Progress | None = None) -> tuple[list[LevelResult], bool]:
    """The sweep. Nothing is sent before the server is reachable and serves `model`; then
    `on_ready(standin)` runs, and `on_level` once per level as soon as that level finishes."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=max(levels) + 4, max_keepalive_connections=max(levels) + 4)
    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout, limits=limits) as client:
        served = await served_models(client, url)
        if model not in served:
            listed = ", ".join(repr(m) for m in served) or "no model at all"
            raise BenchError(f"{url} serves {listed}, not {model!r}; pass --model with a served id "
                             "(nothing was sent)")
        standin = force_standin or await detect_standin(client)
        if on_ready:
            on_ready(standin)
        results = []
        for conc in levels:
            level = await run_level(client, model, conc, requests_for_level(conc, per_level), max_tokens, progress)
            results.append(level)
            if on_level:
                on_level(level)
    return results, standin
