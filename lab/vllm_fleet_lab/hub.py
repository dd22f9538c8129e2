"""The lab's Hugging Face Hub stand-in (a test double): container `vllm-fleet-lab-hub`.

  vllm-fleet-lab-hub   lab/hf-hub-standin/server.py (stdlib) over <lab>/hub, port 8080, on the
                       lab network at .4; serves stand-in repos for every model the profiles use.
                       Every repo is gated, as a gated model is on the real Hub: files download
                       only with the lab's token (keys.hf_token), which the inventory gives the
                       prefetch (vllm_fleet_hf_token). The hub reads it from a file mounted
                       read-only, so it is on no command line and in no `docker inspect`.

The vllm role's prefetch runs `hf download` inside the vLLM image with HF_ENDPOINT set to
`vllm_hf_endpoint`; in the lab that image is the vLLM stand-in, whose `hf` is
lab/hf-hub-standin/hf, and the endpoint is this container: what an air-gapped site does with its
own Hub mirror.

Why the inventory's endpoint is an address, not the name: the prefetch container runs in a lab
host's nested dockerd, whose containers get the VM's public resolvers (Docker's embedded DNS at
127.0.0.11 is reachable only in the lab host's own network namespace), so `vllm-fleet-lab-hub`
does not resolve there. The fixed address does (routed through the lab host).
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import yaml

from .config import HUB, HUB_PORT, NETWORK, REPO_ROOT, LabPaths
from .docker_objects import create_container, start
from .keys import hf_token
from .proc import log
from .services import wait_http

HUB_SOURCE = REPO_ROOT / "lab" / "hf-hub-standin"
PROFILES = REPO_ROOT / "src" / "vllm_fleet" / "data" / "profiles.yml"
# Used only when profiles.yml cannot be read: the model ids the profiles used when this was written.
FALLBACK_MODELS = ("nvidia/Qwen3.6-35B-A3B-NVFP4", "Qwen/Qwen3.6-35B-A3B")
STANDIN_NOTE = ("vllm-fleet lab STAND-IN (test double): not the real model, no usable weights; "
                "served by lab/hf-hub-standin to prove the prefetch path")


def hub_endpoint(ip: str) -> str:
    """The endpoint as lab hosts' containers reach it (see the module docstring for why an IP)."""
    return f"http://{ip}:{HUB_PORT}"


def model_ids() -> list[str]:
    """Every model id the serving profiles use (profiles.yml `models:`), read as data."""
    try:
        data = yaml.safe_load(PROFILES.read_text()) or {}
        ids = sorted((data.get("models") or {}).keys())
    except (OSError, yaml.YAMLError):
        ids = []
    return ids or list(FALLBACK_MODELS)


def _config(model_id: str) -> dict:
    """Qwen3-MoE-shaped config.json (tiny sizes), marked as a stand-in."""
    config = {
        "_vllm_fleet_standin": STANDIN_NOTE,
        "_name_or_path": model_id,
        "architectures": ["Qwen3MoeForCausalLM"],
        "model_type": "qwen3_moe",
        "hidden_size": 32,
        "intermediate_size": 64,
        "moe_intermediate_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "vocab_size": 32,
        "max_position_embeddings": 262144,
        "rope_theta": 10000000,
        "torch_dtype": "bfloat16",
    }
    if "nvfp4" in model_id.lower():
        config["quantization_config"] = {"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION"}
    return config


def _safetensors(model_id: str) -> bytes:
    """A valid safetensors file of one 32x32 F32 tensor (4 KiB), bytes derived from the model id."""
    seed = hashlib.sha256(model_id.encode()).digest()
    data = b"".join(hashlib.sha256(seed + struct.pack(">I", i)).digest() for i in range(128))
    header = json.dumps({
        "__metadata__": {"format": "pt", "vllm_fleet_standin": STANDIN_NOTE},
        "standin.weight": {"dtype": "F32", "shape": [32, 32], "data_offsets": [0, len(data)]},
    }, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def _readme(model_id: str) -> str:
    return (f"# {model_id} (STAND-IN)\n\nA test double served by the vllm-fleet lab's Hugging Face Hub "
            "stand-in (lab/hf-hub-standin). It has the real repo's id but none of its files: a tiny\n"
            "config.json and a 4 KiB model.safetensors, enough to prove the download path\n"
            "(`hf download` into the cache, then `vllm serve` with HF_HUB_OFFLINE=1).\n")


def _write_if_changed(path: Path, data: bytes) -> None:
    """Unchanged files keep their mtime, so the server's hashes (and the fake commit) stay put."""
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_repos(paths: LabPaths) -> list[str]:
    """Stand-in repos under <lab>/hub for every profile's model; returns the model ids."""
    ids = model_ids()
    for model_id in ids:
        repo = paths.hub / model_id
        _write_if_changed(repo / "config.json", (json.dumps(_config(model_id), indent=2) + "\n").encode())
        _write_if_changed(repo / "README.md", _readme(model_id).encode())
        _write_if_changed(repo / "model.safetensors", _safetensors(model_id))
    return ids


def _source_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in HUB_SOURCE.iterdir() if p.is_file()):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def ensure_hub(paths: LabPaths, base_image: str, ip: str) -> dict[str, object]:
    """Write the stand-in repos and (re)start the hub container; returns its status record."""
    ids = write_repos(paths)
    # The token alone in a directory of its own (<lab>/hub-secrets/hf-token), mounted read-only.
    secrets_dir = paths.root / "hub-secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    token = hf_token(paths)
    token_file = secrets_dir / "hf-token"
    if not token_file.exists() or token_file.read_text() != token:
        token_file.touch(mode=0o600)
        token_file.write_text(token)
    create_container(
        HUB,
        ["--network", NETWORK, "--ip", ip, "--hostname", HUB, "--restart", "unless-stopped",
         "-v", f"{paths.hub}:/srv/hub:ro",
         "-v", f"{HUB_SOURCE}:/opt/hf-hub-standin:ro",
         "-v", f"{secrets_dir}:/run/secrets/hf-hub-standin:ro",
         # The server is bind-mounted: a changed server.py recreates the container via this hash.
         "--label", f"vllm-fleet-lab.hub-server={_source_hash()}",
         # The server reads the token once, at start: another token recreates the container.
         "--label", f"vllm-fleet-lab.hub-token={hashlib.sha256(token.encode()).hexdigest()[:16]}",
         base_image],
        ["python3", "/opt/hf-hub-standin/server.py", "--root", "/srv/hub", "--port", str(HUB_PORT),
         "--token-file", "/run/secrets/hf-hub-standin/hf-token"],
    )
    start(HUB)
    endpoint = hub_endpoint(ip)
    wait_http(f"{endpoint}/api/models/{ids[0]}", HUB)
    log(f"Hugging Face Hub stand-in at {endpoint} serves {', '.join(ids)} (gated: the lab's token)")
    return {"name": HUB, "address": ip, "url": endpoint, "models": ids, "gated": True}
