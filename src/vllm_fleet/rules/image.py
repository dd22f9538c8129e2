"""Rules about the image and the model: pinned by digest, within the model's context limit,
no quantization flag that contradicts the checkpoint, the revision pinned."""

from __future__ import annotations

from typing import Iterator

from vllm_fleet.rules.base import ERROR, INFO, WARNING, Finding, HostView, Rule

MAX_MODEL_LEN_LIMIT = 262144  # seed: native 131K extended to 262,144 via RoPE scaling
DIGEST_COMMAND = "skopeo inspect --format '{{{{.Digest}}}}' docker://{ref}"


def check_digest(h: HostView) -> Iterator[Finding]:
    image = h.cfg["image"]
    if not image.get("digest"):
        ref = f"{image.get('repository')}:{image.get('tag') or 'TAG'}"
        yield ("vllm_fleet_overrides.image.digest",
               f"image {ref} has no digest; floating tags are refused. Get the digest with "
               f"`{DIGEST_COMMAND.format(ref=ref)}` and set vllm_fleet_overrides.image.digest")


def check_max_model_len(h: HostView) -> Iterator[Finding]:
    value = int(h.cfg["serving"]["max_model_len"])
    if value > MAX_MODEL_LEN_LIMIT:
        yield ("vllm_fleet_overrides.serving.max_model_len",
               f"max_model_len {value} is above the model's {MAX_MODEL_LEN_LIMIT}-token limit; lower it")


def check_quantization(h: HostView) -> Iterator[Finding]:
    chosen = h.cfg["serving"].get("quantization")
    detected = h.cfg["model"].get("quantization")
    if chosen and detected and chosen != detected:
        yield ("vllm_fleet_overrides.serving.quantization",
               f"--quantization {chosen} does not match the checkpoint, which vLLM auto-detects as {detected}; "
               f"drop the quantization setting")


def check_revision(h: HostView) -> Iterator[Finding]:
    if h.cfg["model"].get("revision") in (None, "main"):
        yield ("vllm_fleet_overrides.model.revision",
               f"model {h.cfg['model']['id']} follows the branch 'main'; pin a commit for reproducible deploys", INFO)


RULES: tuple[Rule, ...] = (
    Rule("VF301", ERROR, "image pinned by digest", check_digest),
    Rule("VF302", ERROR, "max_model_len within the model's limit", check_max_model_len),
    Rule("VF307", WARNING, "no --quantization that contradicts the checkpoint", check_quantization),
    Rule("VF308", INFO, "model revision pinned", check_revision),
)
