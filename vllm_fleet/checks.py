"""Semantic rules over a host's effective serving configuration.

Lint runs them on what the inventory declares; preflight runs the hardware ones again on what
nvidia-smi reports. Each rule has a stable id and a severity; its message names the fix.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from vllm_fleet import profiles
from vllm_fleet.suggest import suggest
from vllm_fleet.serve_args import serve_args

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}

# seed §"The vLLM Serve Commands": the three variables it calls mandatory on DGX Spark.
SPARK_SEED_ENV = ("VLLM_USE_FLASHINFER_MOE_FP4", "VLLM_FP8_MOE_BACKEND", "FLASHINFER_DISABLE_VERSION_CHECK")
SPARK_COMPUTE_CAPABILITY = "12.1"
# seed §"Pushing Further": cap --max-model-len at 65536 on Spark at 0.85 utilization.
SPARK_MAX_MODEL_LEN = 65536
MAX_MODEL_LEN_LIMIT = 262144  # seed: native 131K extended to 262,144 via RoPE scaling
# Activations, CUDA graphs and the engine's own buffers; a deliberately round estimate.
RUNTIME_OVERHEAD_GIB = 2.0
VLLM_DEFAULT_MAX_NUM_SEQS = 256
DIGEST_COMMAND = "skopeo inspect --format '{{{{.Digest}}}}' docker://{ref}"


@dataclass
class Violation:
    rule: str
    severity: str
    host: str
    var: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity, "host": self.host, "var": self.var, "message": self.message}


@dataclass
class HostView:
    """What the rules look at: declared values for lint, measured ones for preflight."""

    name: str
    cfg: dict[str, Any]
    compute_capability: str | None
    gpu_memory_mib: int | None
    gpu_count: int
    cpu_arch: str | None
    driver_branch: int | None
    instances: list[dict[str, Any]] = field(default_factory=list)
    bind_address: str = "127.0.0.1"
    api_key_set: bool = False
    lab_standin: bool = False
    unified_memory: bool = False


Finding = tuple[str, str] | tuple[str, str, str]  # (var, message[, severity override])


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    summary: str
    check: Callable[[HostView], Iterable[Finding]]


def default_instances(tensor_parallel_size: int) -> list[dict[str, Any]]:
    """One instance named `main` on the first tensor_parallel_size GPUs, port 8000."""
    return [{"name": "main", "gpus": list(range(int(tensor_parallel_size))), "port": 8000}]


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


def _version(h: HostView) -> str:
    return str(h.cfg["image"].get("vllm_version") or "0")


# --- hardware ---------------------------------------------------------------------------


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
        if h.lab_standin:
            yield "vllm_fleet_cpu_arch", msg + " (lab stand-in host: allowed)", INFO
        else:
            yield "vllm_fleet_cpu_arch", msg + "; fix vllm_fleet_cpu_arch or move the host to the right group"


def check_image_platform(h: HostView) -> Iterator[Finding]:
    platforms = h.cfg["image"].get("platforms") or []
    want = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(h.cpu_arch or "")
    if want and want not in platforms:
        yield ("vllm_fleet_overrides.image.platforms",
               f"the image {h.cfg['image'].get('repository')} is built for {', '.join(platforms)} but this "
               f"{h.cpu_arch} host needs {want}; pin the multi-architecture index digest (not a single-platform child)")


def check_driver_for_cuda(h: HostView) -> Iterator[Finding]:
    cuda_major = h.cfg["image"].get("cuda_major")
    need = profiles.driver_branch_min(cuda_major) if cuda_major else None
    if need and h.driver_branch is not None and int(h.driver_branch) < need:
        yield ("vllm_fleet_driver_branch",
               f"driver branch {h.driver_branch} is too old for the image's CUDA {cuda_major} (needs >= {need}); "
               f"upgrade the driver to {need} or newer, or pin a CUDA 12 image (-cu129 tag) with cuda_major 12")


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


# --- DGX Spark ---------------------------------------------------------------------------


def _is_spark(h: HostView) -> bool:
    return h.compute_capability == SPARK_COMPUTE_CAPABILITY


def check_spark_env(h: HostView) -> Iterator[Finding]:
    if not _is_spark(h):
        return
    env_table = profiles.releases()["env"]
    version = _version(h)
    # Only the variables something in the pinned image still reads are required: the seed's
    # claim that all three are mandatory predates their removal (facts §"Flags and env vars").
    for var in SPARK_SEED_ENV:
        spec = env_table.get(var)
        read = spec is not None and (spec.get("reader") not in (None, "vllm") or profiles.available_in(spec, version))
        if read and var not in (h.cfg.get("env") or {}):
            yield (f"vllm_fleet_overrides.env.{var}",
                   f"DGX Spark needs {var} set (seed: FlashInfer MoE kernel mismatch at startup without it); "
                   f"add it to the profile's env")


def check_spark_chunked_prefill(h: HostView) -> Iterator[Finding]:
    if _is_spark(h) and h.cfg["serving"].get("enable_chunked_prefill") is not True:
        yield ("vllm_fleet_overrides.serving.enable_chunked_prefill",
               "DGX Spark needs chunked prefill: without it long prompts OOM well before max_model_len; "
               "set enable_chunked_prefill: true")


def check_spark_context(h: HostView) -> Iterator[Finding]:
    serving = h.cfg["serving"]
    if _is_spark(h) and int(serving["max_model_len"]) > SPARK_MAX_MODEL_LEN:
        yield ("vllm_fleet_overrides.serving.max_model_len",
               f"max_model_len {serving['max_model_len']} is above {SPARK_MAX_MODEL_LEN}, the safe cap on DGX Spark "
               f"at {serving['gpu_memory_utilization']} utilization; lower it to {SPARK_MAX_MODEL_LEN}")


# --- image and vLLM version -------------------------------------------------------------


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


def check_reasoning_parser(h: HostView) -> Iterator[Finding]:
    parser = h.cfg["serving"].get("reasoning_parser")
    known = profiles.releases()["reasoning_parsers"]
    if h.cfg["model"].get("reasoning") and not parser:
        yield ("vllm_fleet_overrides.serving.reasoning_parser",
               "this is a reasoning model: without reasoning_parser: qwen3, <think>...</think> leaks into content; set it")
    elif parser and parser not in known:
        yield ("vllm_fleet_overrides.serving.reasoning_parser",
               f"there is no reasoning parser named {parser!r}{suggest(parser, known)}")


def check_tool_parser(h: HostView) -> Iterator[Finding]:
    serving = h.cfg["serving"]
    parser = serving.get("tool_call_parser")
    known = profiles.releases()["tool_call_parsers"]
    if parser and parser not in known:
        hint = suggest(parser, known) or f"; use one of {', '.join(known)}"
        yield "vllm_fleet_overrides.serving.tool_call_parser", f"there is no tool call parser named {parser!r}{hint}"
    if serving.get("enable_auto_tool_choice") and not parser:
        yield ("vllm_fleet_overrides.serving.enable_auto_tool_choice",
               "enable_auto_tool_choice needs tool_call_parser (vLLM refuses to start without it); set qwen3_coder")


def _flag_values(args: list[str]) -> Iterator[tuple[str, str | None]]:
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            name, _, inline = arg.partition("=")
            value = inline or (args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else None)
            yield name, value


def check_flags_for_version(h: HostView) -> Iterator[Finding]:
    version = _version(h)
    table = profiles.releases()["flags"]
    for flag, value in _flag_values(serve_args(h.cfg)):
        spec = table.get(flag)
        if spec is None:
            yield ("vllm_fleet_overrides.serving.extra_args",
                   f"{flag} is not in vllm-fleet's table of vLLM flags, so it cannot be vouched for on vLLM {version}; "
                   f"check `vllm serve --help` of that image", WARNING)
            continue
        if not profiles.available_in(spec, version):
            bound = f"needs vLLM >= {spec['since']}" if "since" in spec else f"was removed in vLLM {spec['until']}"
            yield "vllm_fleet_overrides.serving", f"{flag} {bound} but the pinned image has vLLM {version}; drop it or pin a newer image"
        elif spec.get("choices") and value is not None and value not in spec["choices"]:
            yield ("vllm_fleet_overrides.serving",
                   f"{flag} {value!r} is not a valid choice{suggest(value, spec['choices'])} (valid: {', '.join(spec['choices'])})")


def check_env_for_version(h: HostView) -> Iterator[Finding]:
    version = _version(h)
    table = profiles.releases()["env"]
    catalogue_env = _profile(h).get("env") or {}
    env = h.cfg.get("env") or {}
    for var in sorted(env):
        spec = table.get(var)
        where = f"vllm_fleet_overrides.env.{var}"
        # A dead variable the catalogue keeps on purpose (the seed's Spark trio, documented there)
        # is a note; one an inventory adds is more likely a mistake, so it warns.
        severity = INFO if catalogue_env.get(var) == env[var] else WARNING
        kept = " (kept from the profile's source; it has no effect)" if severity == INFO else ""
        if spec is None:
            if var.startswith("VLLM_"):
                yield (where, f"{var} is not a vLLM environment variable: vLLM {version} ignores it "
                              f"(logs \"Unknown vLLM environment variable detected\"){kept}", severity)
        elif spec.get("reader") not in (None, "vllm"):
            yield where, f"{var} is read by {spec['reader']}, not by vLLM", INFO
        elif not profiles.available_in(spec, version):
            yield where, f"{var} is not read by vLLM {version} (removed in {spec.get('until')}){kept or '; it has no effect'}", severity


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


# --- instances and exposure ---------------------------------------------------------------


def check_instances(h: HostView) -> Iterator[Finding]:
    tp = int(h.cfg["serving"].get("tensor_parallel_size") or 1)
    ports: dict[int, str] = {}
    gpus: dict[int, str] = {}
    for i, inst in enumerate(h.instances):
        where = f"vllm_fleet_instances[{i}]"
        if inst["port"] in ports:
            yield where + ".port", f"instances {ports[inst['port']]!r} and {inst['name']!r} both use port {inst['port']}; give each its own port"
        ports.setdefault(inst["port"], inst["name"])
        for gpu in inst["gpus"]:
            if gpu in gpus:
                yield where + ".gpus", f"instances {gpus[gpu]!r} and {inst['name']!r} both use GPU {gpu}; one GPU serves one instance"
            gpus.setdefault(gpu, inst["name"])
            if gpu >= h.gpu_count:
                yield where + ".gpus", f"instance {inst['name']!r} uses GPU {gpu} but the host has {h.gpu_count} GPU(s) (0..{h.gpu_count - 1})"
        if len(inst["gpus"]) != tp:
            yield (where + ".gpus",
                   f"instance {inst['name']!r} has {len(inst['gpus'])} GPU(s) but tensor_parallel_size is {tp}; "
                   f"give it {tp} GPU(s) or change tensor_parallel_size")


def check_api_key(h: HostView) -> Iterator[Finding]:
    try:
        loopback = ipaddress.ip_address(h.bind_address).is_loopback
    except ValueError:
        return  # the schema reports a malformed address
    if not loopback and not h.api_key_set:
        yield ("vllm_fleet_api_key",
               f"the server binds {h.bind_address}, reachable from other machines, without an API key; set "
               f"vllm_fleet_api_key (from Ansible Vault) or bind 127.0.0.1")


RULES: tuple[Rule, ...] = (
    Rule("VF101", ERROR, "GPU compute capability served by the profile", check_compute_capability),
    Rule("VF102", ERROR, "CPU architecture supported by the profile", check_cpu_arch),
    Rule("VF103", ERROR, "image built for the host's CPU architecture", check_image_platform),
    Rule("VF104", ERROR, "driver branch new enough for the image's CUDA major", check_driver_for_cuda),
    Rule("VF105", ERROR, "GPU memory holds weights and KV cache", check_memory_fit),
    Rule("VF201", ERROR, "DGX Spark env vars that the pinned vLLM reads", check_spark_env),
    Rule("VF202", ERROR, "DGX Spark chunked prefill", check_spark_chunked_prefill),
    Rule("VF203", ERROR, "DGX Spark max_model_len cap", check_spark_context),
    Rule("VF301", ERROR, "image pinned by digest", check_digest),
    Rule("VF302", ERROR, "max_model_len within the model's limit", check_max_model_len),
    Rule("VF303", ERROR, "reasoning parser set and known", check_reasoning_parser),
    Rule("VF304", ERROR, "tool parser exists", check_tool_parser),
    Rule("VF305", ERROR, "flags valid for the pinned vLLM version", check_flags_for_version),
    Rule("VF306", WARNING, "env vars read by the pinned vLLM version", check_env_for_version),
    Rule("VF307", WARNING, "no --quantization that contradicts the checkpoint", check_quantization),
    Rule("VF308", INFO, "model revision pinned", check_revision),
    Rule("VF401", ERROR, "instances: distinct ports and GPUs, GPU count matches tensor parallel", check_instances),
    Rule("VF402", ERROR, "API key when binding a non-loopback address", check_api_key),
)
HARDWARE_RULES = ("VF101", "VF104", "VF105", "VF401")


def run_rules(h: HostView, only: Iterable[str] | None = None) -> list[Violation]:
    chosen = set(only) if only is not None else None
    found = []
    for rule in RULES:
        if chosen is not None and rule.id not in chosen:
            continue
        for finding in rule.check(h):
            severity = finding[2] if len(finding) == 3 else rule.severity
            found.append(Violation(rule.id, severity, h.name, finding[0], finding[1]))
    return found


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def preflight_problems(cfg: dict[str, Any], gpu_facts: dict[str, Any], free_disk_bytes: int, host: dict[str, Any]) -> list[str]:
    """Why this host must not go on to download anything, judged on measured facts."""
    problems = []
    gpus = gpu_facts.get("gpus") or []
    if not gpus:
        return ["nvidia-smi reports no GPU; check the driver and that the host is in the right group"]
    memory = gpus[0].get("memory_total_mib")
    if memory is None and gpu_facts.get("unified_memory"):
        # A lab stand-in is not a 128 GB Spark: judge the memory its inventory declares.
        measured = gpu_facts.get("system_memory_mib") or host.get("memtotal_mib")
        memory = host.get("declared_memory_mib") if _truthy(host.get("lab_standin")) else measured
    tp = int(cfg["serving"].get("tensor_parallel_size") or 1)
    view = HostView(
        name=str(host.get("name", "?")),
        cfg=cfg,
        compute_capability=str(gpus[0].get("compute_capability")),
        gpu_memory_mib=int(memory) if memory else None,
        gpu_count=len(gpus),
        cpu_arch=host.get("cpu_arch"),
        driver_branch=gpu_facts.get("driver_branch"),
        instances=host.get("instances") or default_instances(tp),
    )
    names = {str(g.get("name")) for g in gpus}
    if len(names) > 1:
        problems.append(f"the host mixes GPU models ({', '.join(sorted(names))}); one profile cannot serve them all")
    if gpu_facts.get("mig_enabled"):
        problems.append("MIG mode is enabled; disable it (nvidia-smi -mig 0) or use a profile sized for MIG slices")
    for v in run_rules(view, HARDWARE_RULES):
        if v.severity == ERROR:
            problems.append(v.message)
    need_gib = float(cfg["model"]["weights_gib"]) + float(host.get("image_size_gib", 25)) + float(host.get("margin_gib", 20))
    if free_disk_bytes is not None and free_disk_bytes / 2**30 < need_gib:
        problems.append(
            f"only {free_disk_bytes / 2**30:.1f} GiB free for the model cache and image but ~{need_gib:.0f} GiB are "
            f"needed (weights {cfg['model']['weights_gib']} GiB + image + margin); free space or point the cache at a bigger disk"
        )
    return problems
