"""Prometheus metrics with vLLM's names, rendered as the text exposition format.

Names and label set follow vLLM's V1 metrics (lab-notes and facts §Metrics): prefix `vllm:`,
labels model_name and engine="0", counters exposed with `_total`. Values are SIMULATED by the
stand-in; the rendered text starts with a comment saying so.
"""

from __future__ import annotations

import threading

TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]
ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0,
               7.5, 10.0, 20.0, 40.0, 80.0]
E2E_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
               60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0]


def _num(value: float) -> str:
    return repr(float(value))


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Histogram:
    def __init__(self, buckets: list[float]):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.sum += value
        self.count += 1


class Metrics:
    """All of the stand-in's metrics; one lock, because handler threads update them."""

    def __init__(self, model_name: str, num_speculative_tokens: int):
        self.lock = threading.Lock()
        self.labels = f'model_name="{_esc(model_name)}",engine="0"'
        self.spec_k = num_speculative_tokens
        self.running = 0
        self.waiting = 0
        self.kv_cache_usage = 0.0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.success: dict[str, int] = {}
        self.spec_drafts = 0
        self.spec_draft_tokens = 0
        self.spec_accepted = 0
        self.spec_accepted_per_pos = [0] * num_speculative_tokens
        self.ttft = Histogram(TTFT_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)

    def record_spec_step(self, accepted: int) -> None:
        """One speculative step: k draft tokens proposed, the first `accepted` verified."""
        with self.lock:
            self.spec_drafts += 1
            self.spec_draft_tokens += self.spec_k
            self.spec_accepted += accepted
            for pos in range(accepted):
                self.spec_accepted_per_pos[pos] += 1

    def render(self) -> str:
        lines = ["# vLLM STAND-IN (test double, not vLLM, no GPU): every value below is "
                 "simulated, not a GPU measurement"]
        lb = self.labels

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, str, float]]):
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for suffix, extra, value in samples:
                labels = lb + ("," + extra if extra else "")
                lines.append(f"{name}{suffix}{{{labels}}} {_num(value)}")

        def histogram(name: str, help_text: str, hist: Histogram):
            samples = [("_bucket", f'le="{_num(b)}"', c) for b, c in zip(hist.buckets, hist.counts)]
            samples.append(("_bucket", 'le="+Inf"', hist.count))
            samples += [("_count", "", hist.count), ("_sum", "", hist.sum)]
            metric(name, "histogram", help_text, samples)

        with self.lock:
            metric("vllm:num_requests_running", "gauge",
                   "Number of requests in model execution batches.", [("", "", self.running)])
            metric("vllm:num_requests_waiting", "gauge",
                   "Number of requests waiting to be processed.", [("", "", self.waiting)])
            metric("vllm:kv_cache_usage_perc", "gauge",
                   "KV-cache usage. 1 means 100 percent usage.", [("", "", self.kv_cache_usage)])
            metric("vllm:prefix_cache_queries", "counter",
                   "Prefix cache queries, in terms of number of queried tokens.",
                   [("_total", "", self.prefix_queries)])
            metric("vllm:prefix_cache_hits", "counter",
                   "Prefix cache hits, in terms of number of cached tokens.",
                   [("_total", "", self.prefix_hits)])
            metric("vllm:prompt_tokens", "counter", "Number of prefill tokens processed.",
                   [("_total", "", self.prompt_tokens)])
            metric("vllm:generation_tokens", "counter", "Number of generation tokens processed.",
                   [("_total", "", self.generation_tokens)])
            metric("vllm:request_success", "counter", "Count of successfully processed requests.",
                   [("_total", f'finished_reason="{r}"', n)
                    for r, n in sorted(self.success.items())])
            histogram("vllm:time_to_first_token_seconds",
                      "Histogram of time to first token in seconds.", self.ttft)
            histogram("vllm:inter_token_latency_seconds",
                      "Histogram of inter-token latency in seconds.", self.itl)
            histogram("vllm:e2e_request_latency_seconds",
                      "Histogram of e2e request latency in seconds.", self.e2e)
            if self.spec_k:
                metric("vllm:spec_decode_num_drafts", "counter", "Number of spec decoding drafts.",
                       [("_total", "", self.spec_drafts)])
                metric("vllm:spec_decode_num_draft_tokens", "counter", "Number of draft tokens.",
                       [("_total", "", self.spec_draft_tokens)])
                metric("vllm:spec_decode_num_accepted_tokens", "counter",
                       "Number of accepted tokens.", [("_total", "", self.spec_accepted)])
                metric("vllm:spec_decode_num_accepted_tokens_per_pos", "counter",
                       "Accepted tokens per draft position.",
                       [("_total", f'position="{i}"', n)
                        for i, n in enumerate(self.spec_accepted_per_pos)])
        return "\n".join(lines) + "\n"
