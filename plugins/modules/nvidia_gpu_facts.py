#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module: read the host's NVIDIA GPUs, driver and CUDA version from nvidia-smi.

Self-contained on purpose (stdlib + ansible.module_utils only): Ansible ships this file to the
GPU host and runs it there with the host's Python 3.11/3.12, where vllm_fleet is not installed.
The parsing lives in pure module-level functions so unit tests can feed them real captures.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nvidia_gpu_facts
short_description: Gather NVIDIA GPU facts (GPUs, driver, CUDA version) from nvidia-smi
description:
  - Runs C(nvidia-smi --query-gpu=... --format=csv,noheader,nounits) and plain C(nvidia-smi)
    and returns them as the fact C(nvidia_gpu_facts).
  - Read-only; supports check mode.
  - On unified-memory systems (DGX Spark GB10) nvidia-smi reports the GPU memory as C([N/A]);
    the memory fields are then null, C(unified_memory) is true and C(system_memory_mib) is the
    host's MemTotal.
options: {}
author:
  - vllm-fleet
"""

EXAMPLES = r"""
- name: Gather GPU facts
  vllm_fleet.fleet.nvidia_gpu_facts:

- name: Show the driver branch
  ansible.builtin.debug:
    msg: "{{ nvidia_gpu_facts.driver_branch }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: success
  type: dict
  contains:
    nvidia_gpu_facts:
      description: >-
        count, driver_version, driver_branch, cuda_driver_version, gpus (index, name, uuid,
        compute_capability, memory_total_mib, memory_free_mib, pci_bus_id, mig_mode),
        mig_enabled, unified_memory, system_memory_mib.
      type: dict
      returned: success
"""

import re

from ansible.module_utils.basic import AnsibleModule

# The fields the module asks for, in order. compute_cap needs driver >= 510 (older drivers
# answer "not a valid field"); everything we serve with is far newer.
QUERY_FIELDS: tuple[str, ...] = (
    "index",
    "name",
    "uuid",
    "compute_cap",
    "driver_version",
    "memory.total",
    "memory.free",
    "pci.bus_id",
    "mig.mode.current",
)

# nvidia-smi field name -> key in the returned GPU dict.
FIELD_KEYS: dict[str, str] = {
    "index": "index",
    "name": "name",
    "uuid": "uuid",
    "compute_cap": "compute_capability",
    "driver_version": "driver_version",
    "memory.total": "memory_total_mib",
    "memory.free": "memory_free_mib",
    "pci.bus_id": "pci_bus_id",
    "mig.mode.current": "mig_mode",
}

# Fields whose value is a whole number of MiB (with units it reads "81559 MiB").
_INT_FIELDS = frozenset({"index", "memory.total", "memory.free"})

# What nvidia-smi prints when a value does not exist on this GPU (csv puts it in brackets;
# the unified-memory GB10 reports memory.total this way).
_UNAVAILABLE = frozenset({"[N/A]", "N/A", "[Not Supported]", "Not Supported", "[Unknown Error]"})

# A csv header cell once its unit suffix is gone: "memory.total", "mig.mode.current".
_FIELD_NAME_RE = re.compile(r"^[a-z_][a-z0-9_.]*$")

NOT_FOUND_MSG = (
    "nvidia-smi was not found: the NVIDIA driver is not installed on this host; "
    "install the driver (cuda role) or fix the host's group"
)


def query_command(binary: str = "nvidia-smi") -> list[str]:
    """The exact argv the module runs; kept public so tests and the lab stand-in agree on it."""
    return [binary, "--query-gpu=" + ",".join(QUERY_FIELDS), "--format=csv,noheader,nounits"]


def _is_header(line: str) -> bool:
    # A header row is all field names ("index, name, memory.total [MiB]"): lowercase, dotted.
    # Data rows always have a cell that is not (a digit-led index, "NVIDIA ...", "Enabled").
    cells = [_strip_unit_suffix(cell) for cell in line.split(",")]
    return all(_FIELD_NAME_RE.match(cell) for cell in cells)


def _strip_unit_suffix(header_cell: str) -> str:
    """'memory.total [MiB]' -> 'memory.total' (header cells carry units when 'nounits' is absent)."""
    return re.sub(r"\s*\[[^\]]*\]$", "", header_cell.strip())


def _convert(field: str, raw: str) -> str | int | None:
    """One csv cell -> Python value: None for unavailable, int for MiB/index, else the string."""
    value = raw.strip()
    if value in _UNAVAILABLE:
        return None
    if field in _INT_FIELDS:
        # Without 'nounits' the cell reads "81559 MiB"; the number is the first word.
        number = value.split()[0]
        if not number.isdigit():
            raise ValueError(f"nvidia-smi gave {field}={value!r}, expected a whole number")
        return int(number)
    return value


def parse_query_csv(text: str, fields: tuple[str, ...] | list[str] = QUERY_FIELDS) -> list[dict]:
    """Parse `nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]` output.

    `fields` names the columns when the output has no header; a header row, when present,
    wins (so any of the three csv formats works). Returns one dict per GPU keyed by FIELD_KEYS
    names; columns we do not know are ignored. Raises ValueError with a readable message.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    columns = list(fields)
    if lines and _is_header(lines[0]):
        columns = [_strip_unit_suffix(cell) for cell in lines[0].split(",")]
        lines = lines[1:]
    gpus = []
    for line in lines:
        # GPU names contain no commas (nvidia-smi would quote nothing anyway), so a plain split
        # is what nvidia-smi's own consumers do.
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(columns):
            raise ValueError(
                f"nvidia-smi csv row has {len(cells)} values but {len(columns)} fields were "
                f"asked for: {line!r}"
            )
        gpu = {}
        for field, cell in zip(columns, cells):
            if field in FIELD_KEYS:
                gpu[FIELD_KEYS[field]] = _convert(field, cell)
        gpus.append(gpu)
    return gpus


# Plain nvidia-smi header: "| NVIDIA-SMI 580.159.04   Driver Version: 580.159.04   CUDA Version: 13.0 |"
# nvidia-smi -q:           "CUDA Version                     : 13.0"
# nvidia-smi --version:    "CUDA Version        : 13.0"
_CUDA_RE = re.compile(r"CUDA Version\s*:\s*([0-9]+\.[0-9]+)")


def parse_cuda_version(text: str) -> str | None:
    """The CUDA version the driver supports ('13.0'), from plain, -q or --version output."""
    match = _CUDA_RE.search(text)
    return match.group(1) if match else None


def driver_branch(driver_version: str | None) -> int | None:
    """'580.159.04' -> 580: the branch decides which CUDA toolkits and wheels can run."""
    if not driver_version:
        return None
    head = driver_version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def parse_meminfo_total_mib(text: str) -> int | None:
    """MemTotal from /proc/meminfo ('MemTotal:  131072000 kB') in MiB."""
    match = re.search(r"^MemTotal:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) // 1024 if match else None


def explain_failure(rc: int, stdout: str, stderr: str) -> str:
    """Turn a failed nvidia-smi run into a message that says what to do about it."""
    text = (stdout or "") + (stderr or "")
    bad_field = re.search(r'Field "([^"]+)" is not a valid field to query', text)
    if bad_field:
        return (
            f'nvidia-smi does not know the query field "{bad_field.group(1)}" (rc={rc}): the '
            "NVIDIA driver on this host is too old for this module (compute_cap needs driver "
            ">= 510); upgrade the driver with the cuda role"
        )
    if "couldn't communicate with the NVIDIA driver" in text or "Failed to initialize NVML" in text:
        return (
            f"nvidia-smi cannot talk to the NVIDIA driver (rc={rc}): the kernel module is not "
            "loaded or does not match the user-space driver, usually after a driver install or "
            "upgrade without a reboot; reboot the host (or reload the nvidia kernel modules) and "
            "check `dmesg | grep -i nvrm`. nvidia-smi said: " + " ".join(text.split())
        )
    if "No devices were found" in text:
        return (
            f"nvidia-smi found no GPU (rc={rc}): the GPU is not visible to the driver; check "
            "`lspci | grep -i nvidia`, the VM's GPU passthrough, or the host's group"
        )
    return f"nvidia-smi failed (rc={rc}): " + " ".join(text.split())


def build_facts(gpus: list[dict], cuda_version: str | None, system_memory_mib: int | None) -> dict:
    """Assemble the nvidia_gpu_facts dict from parsed rows (pure, for tests)."""
    driver = next((gpu.get("driver_version") for gpu in gpus if gpu.get("driver_version")), None)
    # GB10 (DGX Spark) shares LPDDR5x with the CPU, so nvidia-smi has no GPU memory size.
    unified = any(gpu.get("memory_total_mib") is None for gpu in gpus)
    return {
        "count": len(gpus),
        "driver_version": driver,
        "driver_branch": driver_branch(driver),
        "cuda_driver_version": cuda_version,
        "gpus": [{key: value for key, value in gpu.items() if key != "driver_version"} for gpu in gpus],
        "mig_enabled": any(gpu.get("mig_mode") == "Enabled" for gpu in gpus),
        "unified_memory": unified,
        "system_memory_mib": system_memory_mib,
    }


def _read_system_memory_mib() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            return parse_meminfo_total_mib(handle.read())
    except OSError:
        return None


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)

    binary = module.get_bin_path("nvidia-smi")
    if not binary:
        module.fail_json(msg=NOT_FOUND_MSG)

    rc, out, err = module.run_command(query_command(binary))
    if rc != 0:
        module.fail_json(msg=explain_failure(rc, out, err), rc=rc, stdout=out, stderr=err)
    try:
        gpus = parse_query_csv(out)
    except ValueError as exc:
        module.fail_json(msg=f"could not parse nvidia-smi output: {exc}", stdout=out)
    if not gpus:
        module.fail_json(msg=explain_failure(rc, "No devices were found", ""), stdout=out)

    # The query interface has no CUDA version; the plain table's header has it, -q as a fallback.
    cuda_version = None
    for args in ([binary], [binary, "-q"]):
        rc, out, err = module.run_command(args)
        cuda_version = parse_cuda_version(out) if rc == 0 else None
        if cuda_version:
            break

    facts = build_facts(gpus, cuda_version, _read_system_memory_mib())
    module.exit_json(changed=False, ansible_facts={"nvidia_gpu_facts": facts})


if __name__ == "__main__":
    main()
