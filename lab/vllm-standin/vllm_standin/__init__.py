"""vLLM STAND-IN: a test double for `vllm serve`, standard library only.

It imitates vLLM's CLI and OpenAI-compatible HTTP API (including known failure modes) so the
lab can exercise deployments without a GPU. It is NOT vLLM, runs no model, and every number it
reports (latencies, KV-cache usage, spec-decode acceptance) is simulated, never a GPU measurement.

Deliberately independent of the product package `vllm_fleet`: a bug shared by the product and
its test double would pass on both sides.
"""

BANNER = "vLLM STAND-IN (test double, not vLLM, no GPU)"
