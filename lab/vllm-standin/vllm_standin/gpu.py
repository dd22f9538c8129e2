"""Which GPU the stand-in pretends to run on (only feeds the memory model and the banner).

Order: `nvidia-smi` on PATH (the lab injects a stand-in nvidia-smi), else env VLLM_STANDIN_GPU
("NAME,MEMORY_MIB,COMPUTE_CAP", e.g. "NVIDIA GB10,[N/A],12.1"), else unknown.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

QUERY = ["--query-gpu=name,memory.total,compute_cap", "--format=csv,noheader,nounits"]


@dataclass(frozen=True)
class GpuInfo:
    name: str
    memory_total: str  # MiB as printed, or "[N/A]" (GB10's unified memory reports N/A)
    compute_cap: str
    source: str

    @property
    def spark_class(self) -> bool:
        """DGX Spark GB10: sm_121 with unified memory (facts §Hardware)."""
        return "GB10" in self.name.upper() or self.compute_cap == "12.1"


UNKNOWN = GpuInfo("unknown", "[N/A]", "", "none")


def parse_line(line: str, source: str) -> GpuInfo | None:
    parts = [p.strip() for p in line.split(",")]
    if len(parts) < 3 or not parts[0]:
        return None
    return GpuInfo(parts[0], parts[1], parts[2], source)


def detect(environ: dict[str, str]) -> GpuInfo:
    smi = shutil.which("nvidia-smi", path=environ.get("PATH"))
    if smi:
        try:
            out = subprocess.run([smi, *QUERY], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0:
            first = next((ln for ln in out.stdout.splitlines() if ln.strip()), "")
            info = parse_line(first, "nvidia-smi")
            if info:
                return info
    configured = environ.get("VLLM_STANDIN_GPU")
    if configured:
        info = parse_line(configured, "VLLM_STANDIN_GPU")
        if info:
            return info
    return UNKNOWN
