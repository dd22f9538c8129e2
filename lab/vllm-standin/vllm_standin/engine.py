"""The simulated engine: request slots, token timing, prefix cache, spec decode, memory model.

Nothing here computes anything on a GPU. Timings come from VLLM_STANDIN_TOKEN_SECONDS and the
spec-decode acceptance from a seeded random draw calibrated to ~0.85.

Memory model (to prove the smoke tests catch the seed's Spark failure): on a Spark-class GPU
(GB10, unified memory) with chunked prefill disabled, a prompt longer than the one-pass prefill
ceiling (VLLM_STANDIN_SPARK_PREFILL_LIMIT tokens, default 8192) kills the engine, the way the
seed article says an unchunked long prefill does on Spark. Afterwards every generation request
gets 500 "EngineCore encountered an issue" and /health answers 503.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator

from vllm_standin.cli import ServeConfig
from vllm_standin.gpu import GpuInfo
from vllm_standin.metrics import Metrics
from vllm_standin.util import log

ENGINE_DEAD_MESSAGE = "EngineCore encountered an issue. See stack trace (above) for the root cause."
DEFAULT_SPARK_PREFILL_LIMIT = 8192
TARGET_ACCEPTANCE = 0.85
PREFIX_BLOCK = 16  # tokens per KV block (vLLM's default block size)


class EngineDeadError(Exception):
    def __init__(self):
        super().__init__(ENGINE_DEAD_MESSAGE)


def _per_position_acceptance(k: int) -> float:
    """Conditional acceptance q so that mean(q, q^2, ..., q^k) ~= TARGET_ACCEPTANCE.

    A draft token at position i counts only if every earlier one was accepted, as in vLLM.
    """
    lo, hi = 0.0, 1.0
    for _ in range(60):
        q = (lo + hi) / 2
        mean = sum(q ** i for i in range(1, k + 1)) / k
        lo, hi = (q, hi) if mean < TARGET_ACCEPTANCE else (lo, q)
    return (lo + hi) / 2


class Engine:
    def __init__(self, config: ServeConfig, gpu: GpuInfo, metrics: Metrics, env: dict[str, str]):
        self.config = config
        self.gpu = gpu
        self.metrics = metrics
        self.token_seconds = float(env.get("VLLM_STANDIN_TOKEN_SECONDS", "0.002"))
        self.spark_prefill_limit = int(env.get("VLLM_STANDIN_SPARK_PREFILL_LIMIT",
                                               str(DEFAULT_SPARK_PREFILL_LIMIT)))
        fault = env.get("VLLM_STANDIN_FAULT", "").strip()
        # engine_dead: requests fail but /health still says 200 (what real vLLM 0.32 did after
        # an engine crash, lab-notes). health_503: /health fails while requests work.
        self.dead = fault == "engine_dead"
        self.health_ok = fault != "health_503"
        self._killed = False  # set by the memory model; unlike engine_dead, /health sees it
        self._slots = threading.Semaphore(config.max_num_seqs)
        self._lock = threading.Lock()
        self._cached_blocks: set[int] = set()
        self._tokens_in_use = 0
        self._rng = random.Random(20261127)
        k = config.num_speculative_tokens
        self._q = _per_position_acceptance(k) if k else 0.0

    @property
    def healthy(self) -> bool:
        """What /health reports: a dead engine killed by the memory model reports 503."""
        return self.health_ok and not self._killed

    # --- memory model -----------------------------------------------------------------
    def would_oom(self, prompt_len: int) -> bool:
        return (self.gpu.spark_class and not self.config.enable_chunked_prefill
                and prompt_len > self.spark_prefill_limit)

    def _kill(self, prompt_len: int) -> None:
        self.dead = True
        self._killed = True
        for line in [
            "EngineCore encountered a fatal error.",
            "Traceback (most recent call last):",
            '  File "vllm/v1/engine/core.py", in run_engine_core  [STAND-IN simulated]',
            "torch.OutOfMemoryError: CUDA out of memory. [STAND-IN simulated: Spark-class "
            f"unified memory, one-pass prefill of {prompt_len} tokens > "
            f"{self.spark_prefill_limit} without chunked prefill]",
        ]:
            log("ERROR", "core.py", line, prefix=f"(EngineCore_DP0 pid={os.getpid()})")

    def die(self, health_notices: bool) -> None:
        """The engine core dies under a live API server (fault drills, by signal)."""
        self.dead = True
        self._killed = self._killed or health_notices
        log("ERROR", "core_client.py", "[STAND-IN fault drill] Engine core proc died unexpectedly"
            + ("" if health_notices else "; the API server keeps answering /health"),
            prefix=f"(APIServer pid={os.getpid()})")

    # --- prefix cache -----------------------------------------------------------------
    def _prefix_hits(self, prompt_ids: list[int]) -> int:
        """Tokens of the leading full blocks already cached; then cache this prompt's blocks."""
        hits, chain, matching = 0, 0, True
        for start in range(0, len(prompt_ids) - PREFIX_BLOCK + 1, PREFIX_BLOCK):
            chain = hash((chain, tuple(prompt_ids[start:start + PREFIX_BLOCK])))
            if matching and chain in self._cached_blocks:
                hits += PREFIX_BLOCK
            else:
                matching = False
                self._cached_blocks.add(chain)
        return hits

    # --- generation -------------------------------------------------------------------
    def generate(self, prompt_ids: list[int], pieces: list[str]) -> Iterator[str]:
        """Yield the planned pieces with simulated timing; raise EngineDeadError if dead."""
        if self.dead:
            raise EngineDeadError()
        m = self.metrics
        arrival = time.monotonic()
        with m.lock:
            m.waiting += 1
        self._slots.acquire()
        with m.lock:
            m.waiting -= 1
            m.running += 1
        in_use = len(prompt_ids)
        try:
            if self.dead:
                raise EngineDeadError()
            if self.would_oom(len(prompt_ids)):
                self._kill(len(prompt_ids))
                raise EngineDeadError()
            with self._lock:
                hits = self._prefix_hits(prompt_ids) if self.config.enable_prefix_caching else 0
            with m.lock:
                if self.config.enable_prefix_caching:
                    m.prefix_queries += len(prompt_ids)
                    m.prefix_hits += hits
                m.prompt_tokens += len(prompt_ids)
            self._use_kv(in_use)
            last = None
            step_left = 0
            for piece in pieces:
                time.sleep(self.token_seconds)
                if self.dead:
                    raise EngineDeadError()
                now = time.monotonic()
                with m.lock:
                    m.generation_tokens += 1
                    if last is None:
                        m.ttft.observe(now - arrival)
                    else:
                        m.itl.observe(now - last)
                last = now
                if self.config.num_speculative_tokens:
                    if step_left == 0:
                        accepted = self._draw_accepted()
                        m.record_spec_step(accepted)
                        step_left = accepted + 1  # accepted drafts + the verified bonus token
                    step_left -= 1
                self._use_kv(1)
                in_use += 1
                yield piece
            with m.lock:
                m.e2e.observe(time.monotonic() - arrival)
        finally:
            self._use_kv(-in_use)
            with m.lock:
                m.running -= 1
            self._slots.release()

    def record_finish(self, reason: str) -> None:
        with self.metrics.lock:
            self.metrics.success[reason] = self.metrics.success.get(reason, 0) + 1

    def _draw_accepted(self) -> int:
        with self._lock:
            accepted = 0
            while accepted < self.config.num_speculative_tokens and self._rng.random() < self._q:
                accepted += 1
            return accepted

    def _use_kv(self, delta: int) -> None:
        # GUESS/simulation: KV capacity = max_model_len * 2 tokens; only the gauge uses it.
        with self.metrics.lock:
            self._tokens_in_use += delta
            cap = max(1, self.config.max_model_len * 2)
            self.metrics.kv_cache_usage = min(1.0, max(0.0, self._tokens_in_use / cap))
