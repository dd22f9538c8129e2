"""Variants of the lab's vLLM stand-in image for upgrade and rollback tests.

A variant is the pushed stand-in image plus a few Dockerfile lines (an ENV that injects a
fault, or only a LABEL so that the digest differs), pushed to the lab registry under
vllm-standin:variant-<name>. The inventory names it by digest, like the real image."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .config import LABEL_ARG, STANDIN_IMAGE_NAME
from .proc import LabError, log, run
from .services import push


def build_variant(record: dict, name: str, lines: list[str]) -> str:
    """Build FROM the lab's stand-in (by digest) with `lines` added; push; return the digest.

    `record` is the lab state (`lab up`'s return value). Idempotent: the same lines give the
    same image, hence the same digest."""
    digest = record.get("image_digest") or ""
    port = record.get("registry", {}).get("local_port")
    if not digest or not port:
        raise LabError("the lab has no vLLM stand-in image or registry; run `vllm-fleet-lab up` first.")
    repo = f"127.0.0.1:{port}/{STANDIN_IMAGE_NAME}"
    ref = f"{repo}:variant-{name}"
    with tempfile.TemporaryDirectory(prefix="vllm-standin-variant-") as tmp:
        dockerfile = Path(tmp) / "Dockerfile"
        dockerfile.write_text("\n".join([f"FROM {repo}@{digest}",
                                         f'LABEL io.vllm-fleet.variant="{name}"', *lines]) + "\n")
        log(f"building and pushing the stand-in variant {ref}")
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        run(["docker", "pull", f"{repo}@{digest}"], env=env)
        run(["docker", "build", "-q", "--label", LABEL_ARG, "-t", ref, tmp], env=env,
            hint="The stand-in variant did not build; see the error above.")
    return push(ref)
