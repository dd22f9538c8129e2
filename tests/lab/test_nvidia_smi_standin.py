"""The lab's nvidia-smi stand-in (a test double) against the real captures, byte for byte.

Also the "lab nvidia-smi feeds preflight" contract: the preflight module's parser, fed the
stand-in's csv for every identity preset, returns that identity's values.
Runs without Docker or a GPU: the stand-in is a plain Python script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "lab" / "nvidia-smi-standin" / "nvidia-smi"
IDENTITIES = REPO / "lab" / "nvidia-smi-standin" / "identities"
FIXTURES = REPO / "tests" / "fixtures" / "nvidia-smi"
sys.path.insert(0, str(REPO / "plugins" / "modules"))

import nvidia_gpu_facts as ngf  # noqa: E402

# The 13 fields of the H100 csv captures, in capture order.
CAPTURE_QUERY = (
    "index,name,uuid,compute_cap,driver_version,memory.total,memory.used,memory.free,pci.bus_id,"
    "persistence_mode,mig.mode.current,power.limit,clocks.max.sm"
)
H100_FOLDERS = ["h100-80gb-hbm3", "2x-h100-80gb-hbm3"]
ALL_IDENTITIES = sorted(p.stem for p in IDENTITIES.glob("*.json"))


def standin(identity: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NVIDIA_SMI_STANDIN_IDENTITY": str(IDENTITIES / f"{identity}.json")}
    environ.update(env or {})
    return subprocess.run([str(STANDIN), *args], env=environ, capture_output=True, check=False, timeout=30)


def ok(identity: str, *args: str, env: dict | None = None) -> bytes:
    proc = standin(identity, *args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def capture(*parts: str) -> bytes:
    return FIXTURES.joinpath(*parts).read_bytes()


def test_identity_presets_exist() -> None:
    assert ALL_IDENTITIES == ["2x-h100-80gb-hbm3", "a100-80gb", "gb10", "h100-80gb-hbm3", "h200"]
    assert os.access(STANDIN, os.X_OK)


# --- byte for byte against the captures ---------------------------------------------------------


@pytest.mark.parametrize("folder", H100_FOLDERS)
@pytest.mark.parametrize(
    "args,fixture",
    [
        ((), "nvidia-smi.txt"),
        (("-L",), "nvidia-smi-L.txt"),
        (("-q",), "nvidia-smi-q.txt"),
        ((f"--query-gpu={CAPTURE_QUERY}", "--format=csv"), "query-csv.txt"),
        ((f"--query-gpu={CAPTURE_QUERY}", "--format=csv,noheader"), "query-csv-noheader.txt"),
        ((f"--query-gpu={CAPTURE_QUERY}", "--format=csv,noheader,nounits"), "query-csv-noheader-nounits.txt"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v)[:40] or "plain",
)
def test_h100_formats_byte_for_byte(folder: str, args: tuple, fixture: str) -> None:
    assert ok(folder, *args) == capture(folder, fixture)


@pytest.mark.parametrize("folder", H100_FOLDERS)
def test_bad_field_message_and_exit_code(folder: str) -> None:
    proc = standin(folder, "--query-gpu=index,bogus_field", "--format=csv")
    # The capture file is stdout followed by the capture script's "rc=N" line.
    expected = capture(folder, "query-bad-field.txt")
    assert proc.stdout + f"rc={proc.returncode}\n".encode() == expected
    assert proc.returncode == 2


@pytest.mark.parametrize("folder", H100_FOLDERS)
def test_version_and_topo(folder: str) -> None:
    # versions-topo.txt = `nvidia-smi --version` + /proc/driver/nvidia/version (2 lines) + `topo -m`.
    lines = capture(folder, "versions-topo.txt").splitlines(keepends=True)
    assert ok(folder, "--version") == b"".join(lines[:4])
    assert ok(folder, "topo", "-m") == b"".join(lines[6:])


def test_h200_table() -> None:
    assert ok("h200") == capture("h200", "h200-nvidia-smi.txt")


def test_h200_full_csv() -> None:
    query = "--query-gpu=index,name,uuid,compute_cap,driver_version,memory.total,pci.bus_id,persistence_mode,mig.mode.current"
    assert ok("h200", query, "--format=csv") == capture("h200", "h200-query-full.csv")


def test_h200_noheader_nounits_csv() -> None:
    out = ok("h200", "--query-gpu=name,compute_cap,driver_version,memory.total", "--format=csv,noheader,nounits")
    assert out == capture("h200", "h200-query-noheader.csv")


def test_h200_q_head() -> None:
    head = capture("h200", "h200-nvidia-smi-q-head.txt")
    assert ok("h200", "-q")[: len(head)] == head


# --- container visibility -----------------------------------------------------------------------


@pytest.mark.parametrize("var", ["NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"])
def test_visible_devices_subset_renumbers(var: str) -> None:
    out = ok("2x-h100-80gb-hbm3", "-L", env={var: "1"}).decode()
    assert out == "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-772b865c-8366-5ebe-fc0f-4af10123340e)\n"
    table = ok("2x-h100-80gb-hbm3", env={var: "1"}).decode()
    assert "00000000:00:07.0" in table and "00000000:00:06.0" not in table


def test_visible_devices_all_and_none() -> None:
    assert ok("2x-h100-80gb-hbm3", "-L", env={"NVIDIA_VISIBLE_DEVICES": "all"}) == capture("2x-h100-80gb-hbm3", "nvidia-smi-L.txt")
    proc = standin("2x-h100-80gb-hbm3", "-L", env={"NVIDIA_VISIBLE_DEVICES": "none"})
    assert proc.returncode == 6 and b"No devices were found" in proc.stdout


def test_missing_identity_says_what_to_do(tmp_path: Path) -> None:
    proc = subprocess.run([str(STANDIN)], env={"NVIDIA_SMI_STANDIN_IDENTITY": str(tmp_path / "nope.json")},
                          capture_output=True, check=False, timeout=30)
    assert proc.returncode != 0 and b"identities/" in proc.stdout


def test_gb10_reports_unified_memory_as_not_available() -> None:
    table = ok("gb10").decode()
    assert "NVIDIA GB10" in table and "Not Supported" in table and "Driver Version: 580.95.05" in table
    csv = ok("gb10", "--query-gpu=memory.total,memory.free", "--format=csv").decode()
    assert csv == "memory.total [MiB], memory.free [MiB]\n[N/A], [N/A]\n"


# --- the contract: lab nvidia-smi feeds preflight -----------------------------------------------


def _expected_gpus(identity: dict) -> list[dict]:
    gpus = []
    for index, gpu in enumerate(identity["gpus"]):
        total = gpu["memory_total_mib"]
        free = None if total is None else total - gpu["memory_reserved_mib"] - gpu["memory_used_mib"]
        gpus.append({
            "index": index,
            "name": gpu["name"],
            "uuid": gpu["uuid"],
            "compute_capability": gpu["compute_cap"],
            "driver_version": identity["driver_version"],
            "memory_total_mib": total,
            "memory_free_mib": free,
            "pci_bus_id": gpu["pci_bus_id"],
            "mig_mode": gpu["mig_mode"],
        })
    return gpus


@pytest.mark.parametrize("name", ALL_IDENTITIES)
def test_preflight_parser_reads_standin_csv(name: str) -> None:
    identity = json.loads((IDENTITIES / f"{name}.json").read_text())
    # Exactly the argv the preflight module runs.
    out = ok(name, *ngf.query_command()[1:]).decode()
    gpus = ngf.parse_query_csv(out)
    assert gpus == _expected_gpus(identity)

    cuda = ngf.parse_cuda_version(ok(name).decode())
    assert cuda == identity["cuda_version"]
    facts = ngf.build_facts(gpus, cuda, 122880)
    assert facts["driver_branch"] == int(identity["driver_version"].split(".")[0])
    assert facts["unified_memory"] is (name == "gb10")


@pytest.mark.parametrize("name", ALL_IDENTITIES)
def test_every_identity_renders_every_format(name: str) -> None:
    for args in [(), ("-L",), ("-q",), ("--version",), ("topo", "-m"),
                 ("--query-gpu=" + CAPTURE_QUERY, "--format=csv")]:
        assert ok(name, *args)
