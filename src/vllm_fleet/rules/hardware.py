"""Rules about the hardware a host declares (or preflight measures): GPU generation, CPU
architecture, the image's platforms, the driver branch and whether the model fits in memory."""

from __future__ import annotations

from typing import Any, Iterator

from vllm_fleet.rules.base import ERROR, WARNING, Finding, HostView, Rule
from vllm_fleet.serving import profiles, releases

# Activations, CUDA graphs and the engine's own buffers; a deliberately round estimate.
RUNTIME_OVERHEAD_GIB = 2.0
VLLM_DEFAULT_MAX_NUM_SEQS = 256


def kv_bytes_per_token(cfg: dict[str, Any]) -> int:
    dtype = cfg["serving"].get("kv_cache_dtype") or "auto"
    table = cfg["model"]["kv_bytes_per_token"]
    return table["fp8"] if str(dtype).startswith("fp8") else table["auto"]


def memory_needed_gib(cfg: dict[str, Any], sequences: int) -> float:
    """Per-GPU memory for weights plus KV cache of `sequences` full-length sequences."""
    serving = cfg["serving"]
    tp = int(serving.get("tensor_parallel_size") or 1)
    kv = kv_bytes_per_token(cfg) * int(serving["max_model_len"]) * sequences / 2**30
    return (float(cfg["model"]["weights_gib"]) + kv) / tp + RUNTIME_OVERHEAD_GIB


def memory_usable_gib(cfg: dict[str, Any], gpu_memory_mib: int) -> float:
    return gpu_memory_mib / 1024 * float(cfg["serving"]["gpu_memory_utilization"])


def _profile(h: HostView) -> dict[str, Any]:
    return profiles.catalogue()["profiles"][h.cfg["name"]]


def check_compute_capability(h: HostView) -> Iterator[Finding]:
    served = _profile(h)["compute_capabilities"]
    if h.compute_capability is None or h.compute_capability in served:
        return
    fits = [n for n, p in profiles.catalogue()["profiles"].items() if h.compute_capability in p["compute_capabilities"]]
    fix = f"move the host to a group using profile {' or '.join(repr(f) for f in fits)}" if fits else "no profile serves this GPU"
    yield ("vllm_fleet_gpu.compute_capability",
           f"GPU compute capability {h.compute_capability} is not served by profile {h.cfg['name']!r} "
           f"(serves {', '.join(served)}); {fix}")


def check_cpu_arch(h: HostView) -> Iterator[Finding]:
    allowed = _profile(h)["cpu_architectures"]
    if h.cpu_arch and h.cpu_arch not in allowed:
        msg = f"CPU architecture {h.cpu_arch} is not one profile {h.cfg['name']!r} runs on ({', '.join(allowed)})"
        yield "vllm_fleet_cpu_arch", msg + "; fix vllm_fleet_cpu_arch or move the host to the right group"


def check_image_platform(h: HostView) -> Iterator[Finding]:
    platforms = h.cfg["image"].get("platforms") or []
    want = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(h.cpu_arch or "")
    if want and want not in platforms:
        yield ("vllm_fleet_overrides.image.platforms",
               f"the image {h.cfg['image'].get('repository')} is built for {', '.join(platforms)} but this "
               f"{h.cpu_arch} host needs {want}; pin the multi-architecture index digest (not a single-platform child)")


def _image_for_driver(h: HostView) -> str | None:
    """A catalogue image of the same vLLM release whose CUDA major this driver branch runs."""
    version = h.cfg["image"].get("vllm_version")
    for name, image in sorted(profiles.catalogue()["images"].items()):
        need = releases.driver_branch_min(image["cuda_major"])
        if str(image.get("vllm_version")) == str(version) and need and h.driver_branch is not None \
                and int(h.driver_branch) >= need:
            return name
    return None


def check_driver_for_cuda(h: HostView) -> Iterator[Finding]:
    cuda_major = h.cfg["image"].get("cuda_major")
    need = releases.driver_branch_min(cuda_major) if cuda_major else None
    if need and h.driver_branch is not None and int(h.driver_branch) < need:
        other = _image_for_driver(h)
        yield ("vllm_fleet_driver_branch",
               f"driver branch {h.driver_branch} is too old for the image's CUDA {cuda_major} (needs >= {need}); "
               f"upgrade the driver to {need} or newer"
               + (f", or serve the same vLLM built for an older CUDA: vllm_fleet_overrides: {{image: {other}}}"
                  if other else ""))


def check_memory_fit(h: HostView) -> Iterator[Finding]:
    if not h.gpu_memory_mib:
        return
    usable = memory_usable_gib(h.cfg, h.gpu_memory_mib)
    serving = h.cfg["serving"]
    one = memory_needed_gib(h.cfg, 1)
    if one > usable:
        yield ("vllm_fleet_overrides.serving.max_model_len",
               f"one {serving['max_model_len']}-token sequence needs ~{one:.1f} GiB per GPU but "
               f"{h.gpu_memory_mib} MiB x {serving['gpu_memory_utilization']} gives {usable:.1f} GiB; lower "
               f"max_model_len, raise tensor_parallel_size or use a card with more memory")
        return
    seqs = int(serving.get("max_num_seqs") or VLLM_DEFAULT_MAX_NUM_SEQS)
    full = memory_needed_gib(h.cfg, seqs)
    if full > usable:
        fit = max(1, int((usable - memory_needed_gib(h.cfg, 0)) / max(one - memory_needed_gib(h.cfg, 0), 1e-9)))
        yield ("vllm_fleet_overrides.serving.max_num_seqs",
               f"{seqs} sequences of {serving['max_model_len']} tokens need ~{full:.1f} GiB per GPU, more than "
               f"the {usable:.1f} GiB available; vLLM will cap concurrency. Set max_num_seqs to {fit} or lower "
               f"max_model_len", WARNING)


RULES: tuple[Rule, ...] = (
    Rule("VF101", ERROR, "GPU compute capability served by the profile", check_compute_capability),
    Rule("VF102", ERROR, "CPU architecture supported by the profile", check_cpu_arch),
    Rule("VF103", ERROR, "image built for the host's CPU architecture", check_image_platform),
    Rule("VF104", ERROR, "driver branch new enough for the image's CUDA major", check_driver_for_cuda),
    Rule("VF105", ERROR, "GPU memory holds weights and KV cache", check_memory_fit),
)
