"""Tests for roles/preflight/library/nvidia_gpu_facts.py against real nvidia-smi captures.

The captures live in tests/fixtures/nvidia-smi/ (copied from ../shared/fixtures/nvidia-smi).
The NVML-failure text and the GB10 line are constructed here from the documented formats; no
real capture of them exists in the fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "plugins" / "modules"
FIXTURES = REPO / "tests" / "fixtures" / "nvidia-smi"
sys.path.insert(0, str(LIBRARY))

import nvidia_gpu_facts as ngf  # noqa: E402

H100 = FIXTURES / "h100-80gb-hbm3"
H100X2 = FIXTURES / "2x-h100-80gb-hbm3"
H200 = FIXTURES / "h200"

# The 13 fields of the H100 captures, for their noheader files.
CAPTURE_FIELDS = (
    "index,name,uuid,compute_cap,driver_version,memory.total,memory.used,memory.free,pci.bus_id,"
    "persistence_mode,mig.mode.current,power.limit,clocks.max.sm"
).split(",")

H100_GPU0 = {
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "uuid": "GPU-a59d0f91-45de-5b41-67c2-4fb843627309",
    "compute_capability": "9.0",
    "driver_version": "580.159.04",
    "memory_total_mib": 81559,
    "memory_free_mib": 81079,
    "pci_bus_id": "00000000:00:06.0",
    "mig_mode": "Disabled",
}

# As the real NVML failure prints it (driver/kernel module missing or mismatched); rc 9.
NVML_FAILURE = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n\n"
)

# A DGX Spark (GB10) answer to the module's own query, constructed from the csv format: unified
# memory means memory.total/free are "[N/A]"; MIG is not supported there either.
GB10_LINE = "0, NVIDIA GB10, GPU-11111111-2222-3333-4444-555555555555, 12.1, 580.95.05, [N/A], [N/A], 0000000F:01:00.0, [N/A]\n"


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# --- parse_query_csv on every csv capture -------------------------------------------------------


@pytest.mark.parametrize("name", ["query-csv.txt", "query-csv-noheader.txt", "query-csv-noheader-nounits.txt"])
def test_h100_all_three_csv_formats_parse_the_same(name: str) -> None:
    gpus = ngf.parse_query_csv(read(H100 / name), CAPTURE_FIELDS)
    assert gpus == [H100_GPU0]


@pytest.mark.parametrize("name", ["query-csv.txt", "query-csv-noheader.txt", "query-csv-noheader-nounits.txt"])
def test_2x_h100_two_gpus(name: str) -> None:
    gpus = ngf.parse_query_csv(read(H100X2 / name), CAPTURE_FIELDS)
    assert [g["index"] for g in gpus] == [0, 1]
    assert [g["uuid"] for g in gpus] == [
        "GPU-4e4a5a30-48d8-466b-95d5-0ae4c2666a86",
        "GPU-772b865c-8366-5ebe-fc0f-4af10123340e",
    ]
    assert [g["pci_bus_id"] for g in gpus] == ["00000000:00:06.0", "00000000:00:07.0"]
    assert all(g["memory_total_mib"] == 81559 and g["memory_free_mib"] == 81079 for g in gpus)


def test_h200_full_csv_with_header_and_units() -> None:
    (gpu,) = ngf.parse_query_csv(read(H200 / "h200-query-full.csv"))
    assert gpu == {
        "index": 0,
        "name": "NVIDIA H200",
        "uuid": "GPU-c9518802-d283-c804-8887-02aa7b76681a",
        "compute_capability": "9.0",
        "driver_version": "580.159.04",
        "memory_total_mib": 143771,
        "pci_bus_id": "00000000:00:06.0",
        "mig_mode": "Disabled",
    }


def test_h200_noheader_with_explicit_fields() -> None:
    gpus = ngf.parse_query_csv(read(H200 / "h200-query-noheader.csv"), ["name", "compute_cap", "driver_version", "memory.total"])
    assert gpus == [{"name": "NVIDIA H200", "compute_capability": "9.0", "driver_version": "580.159.04", "memory_total_mib": 143771}]


def test_gb10_na_memory_is_null_and_unified() -> None:
    gpus = ngf.parse_query_csv(GB10_LINE)
    assert gpus[0]["memory_total_mib"] is None
    assert gpus[0]["memory_free_mib"] is None
    assert gpus[0]["mig_mode"] is None
    assert gpus[0]["compute_capability"] == "12.1"
    facts = ngf.build_facts(gpus, "13.0", 122502)
    assert facts["unified_memory"] is True
    assert facts["system_memory_mib"] == 122502
    assert facts["driver_branch"] == 580
    assert facts["mig_enabled"] is False


def test_row_with_wrong_number_of_values_is_an_error() -> None:
    with pytest.raises(ValueError, match="9 fields were asked for"):
        ngf.parse_query_csv("0, NVIDIA H100 80GB HBM3\n")


def test_non_numeric_memory_is_an_error() -> None:
    line = read(H100 / "query-csv-noheader-nounits.txt").replace("81559", "lots")
    with pytest.raises(ValueError, match="memory.total"):
        ngf.parse_query_csv(line, CAPTURE_FIELDS)


def test_empty_output_is_no_gpus() -> None:
    assert ngf.parse_query_csv("") == []


# --- CUDA version -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [H100 / "nvidia-smi.txt", H100X2 / "nvidia-smi.txt", H200 / "h200-nvidia-smi.txt", H100 / "nvidia-smi-q.txt",
     H200 / "h200-nvidia-smi-q-head.txt", H100 / "versions-topo.txt"],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_parse_cuda_version(path: Path) -> None:
    assert ngf.parse_cuda_version(read(path)) == "13.0"


def test_parse_cuda_version_absent() -> None:
    assert ngf.parse_cuda_version(NVML_FAILURE) is None


# --- failures -----------------------------------------------------------------------------------


def test_bad_field_message() -> None:
    stdout = read(H100 / "query-bad-field.txt").split("rc=")[0]  # the capture appends "rc=2"
    msg = ngf.explain_failure(2, stdout, "")
    assert '"bogus_field"' in msg and "upgrade the driver" in msg and "rc=2" in msg


def test_nvml_failure_message() -> None:
    msg = ngf.explain_failure(9, NVML_FAILURE, "")
    assert "cannot talk to the NVIDIA driver" in msg and "reboot" in msg


def test_driver_library_mismatch_message() -> None:
    msg = ngf.explain_failure(18, "Failed to initialize NVML: Driver/library version mismatch\n", "")
    assert "cannot talk to the NVIDIA driver" in msg


def assert_h100x2_host_facts(facts: dict) -> None:
    """The host-level facts of the real 2x H100 capture (driver 580.159.04, CUDA 13.0)."""
    assert facts["count"] == 2
    assert facts["driver_version"] == "580.159.04"
    assert facts["driver_branch"] == 580
    assert facts["cuda_driver_version"] == "13.0"
    assert facts["mig_enabled"] is False
    assert facts["unified_memory"] is False


def test_build_facts_h100x2() -> None:
    gpus = ngf.parse_query_csv(read(H100X2 / "query-csv.txt"))
    facts = ngf.build_facts(gpus, "13.0", None)
    assert_h100x2_host_facts(facts)
    assert "driver_version" not in facts["gpus"][0]


def test_mig_enabled_when_any_gpu_has_it() -> None:
    gpus = ngf.parse_query_csv(read(H100X2 / "query-csv.txt"))
    gpus[1]["mig_mode"] = "Enabled"
    assert ngf.build_facts(gpus, "13.0", None)["mig_enabled"] is True


def test_meminfo() -> None:
    assert ngf.parse_meminfo_total_mib("MemTotal:       131072000 kB\nMemFree: 1 kB\n") == 128000
    assert ngf.parse_meminfo_total_mib("nothing") is None


def test_query_command_matches_brief() -> None:
    assert ngf.query_command() == [
        "nvidia-smi",
        "--query-gpu=index,name,uuid,compute_cap,driver_version,memory.total,memory.free,pci.bus_id,mig.mode.current",
        "--format=csv,noheader,nounits",
    ]


# --- the module for real, through ansible -------------------------------------------------------

ANSIBLE = Path(sys.executable).parent / "ansible"


def _project(csv_text: str, header: str) -> str:
    """Reduce a capture with a header to the module's own 9 columns in nounits form."""
    lines = csv_text.splitlines()
    columns = [ngf._strip_unit_suffix(c) for c in header.split(",")]
    out = []
    for line in lines:
        cells = dict(zip(columns, (c.strip() for c in line.split(","))))
        out.append(", ".join(cells[f] for f in ngf.QUERY_FIELDS))
    return "\n".join(out) + "\n"


def _fake_nvidia_smi(bindir: Path, query_out: str, plain_out: str, query_rc: int = 0) -> None:
    (bindir / "query.txt").write_text(query_out)
    (bindir / "plain.txt").write_text(plain_out)
    script = bindir / "nvidia-smi"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        # Test double: the query answers with query.txt, everything else with the plain table.
        case "$*" in
          *--query-gpu=*) cat "{bindir}/query.txt"; exit {query_rc} ;;
          *) cat "{bindir}/plain.txt" ;;
        esac
        """))
    script.chmod(0o755)


def _run_module(tmp_path: Path, bindir: Path | None) -> tuple[int, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_LIBRARY=str(LIBRARY),
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",  # ad-hoc prints "host | STATUS => {json}"
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
        ANSIBLE_HOME=str(tmp_path / "home"),
        ANSIBLE_CONFIG=str(tmp_path / "none.cfg"),  # not the repo's ansible.cfg
        PATH=(f"{bindir}:" if bindir else "") + "/usr/bin:/bin",
    )
    proc = subprocess.run(
        [str(ANSIBLE), "localhost", "-c", "local", "-i", "localhost,", "-m", "nvidia_gpu_facts",
         "-e", f"ansible_python_interpreter={sys.executable}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    try:
        result = json.loads(proc.stdout.split("=>", 1)[1])
    except (ValueError, IndexError):
        pytest.fail(f"no json result; rc={proc.returncode}\nstdout={proc.stdout}\nstderr={proc.stderr}")
    return proc.returncode, result


@pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible not in the venv")
def test_module_runs_through_ansible_with_fake_nvidia_smi(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    capture = read(H100X2 / "query-csv.txt").splitlines()
    _fake_nvidia_smi(bindir, _project("\n".join(capture[1:]), capture[0]), read(H100X2 / "nvidia-smi.txt"))

    rc, result = _run_module(tmp_path, bindir)

    assert rc == 0, result
    assert result["changed"] is False
    facts = result["ansible_facts"]["nvidia_gpu_facts"]
    assert_h100x2_host_facts(facts)
    assert facts["gpus"][1] == {
        "index": 1,
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-772b865c-8366-5ebe-fc0f-4af10123340e",
        "compute_capability": "9.0",
        "memory_total_mib": 81559,
        "memory_free_mib": 81079,
        "pci_bus_id": "00000000:00:07.0",
        "mig_mode": "Disabled",
    }


@pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible not in the venv")
def test_module_fails_with_nvml_message(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_nvidia_smi(bindir, NVML_FAILURE, NVML_FAILURE, query_rc=9)
    rc, result = _run_module(tmp_path, bindir)
    assert rc != 0
    assert "cannot talk to the NVIDIA driver" in result["msg"]


@pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible not in the venv")
@pytest.mark.skipif(shutil.which("nvidia-smi", path="/usr/bin:/bin") is not None, reason="host has nvidia-smi")
def test_module_fails_when_nvidia_smi_is_missing(tmp_path: Path) -> None:
    rc, result = _run_module(tmp_path, None)
    assert rc != 0
    assert result["msg"] == ngf.NOT_FOUND_MSG
