"""Every inventory of the corpus is judged as expected: bad ones caught with the expected rule
and host, real-world layouts clean, unreadable ones refused with exit 2 and a sentence; the
example inventory lints clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vllm_fleet.cli import main

CORPUS = yaml.safe_load((Path(__file__).parents[1] / "lint_corpus" / "cases.yml").read_text())
REPO = Path(__file__).parents[2]
CLEAN = [c for c in CORPUS["cases"] if c["expect"] == "clean"]
UNREADABLE = [c for c in CORPUS["cases"] if isinstance(c["expect"], dict) and "exit" in c["expect"]]
BAD = [c for c in CORPUS["cases"] if c not in CLEAN and c not in UNREADABLE]


def _write(root: Path, files: dict) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))


def _materialise(case: dict, root: Path) -> Path:
    if not case.get("replace_base"):
        _write(root, CORPUS["base"])
    for rel in case.get("remove", []):
        (root / rel).unlink()
    _write(root, case["files"])
    for rel in case.get("executable", []):
        (root / rel).chmod(0o755)
    return root


def _lint_json(path: Path, *extra: str, capsys) -> tuple[int, dict]:
    code = main(["lint", str(path), "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS["cases"]) >= 60
    assert len(CLEAN) >= 15 and len(UNREADABLE) >= 2
    assert len({c["id"] for c in CORPUS["cases"]}) == len(CORPUS["cases"])


def test_base_inventory_is_clean(tmp_path: Path, capsys) -> None:
    _write(tmp_path, CORPUS["base"])
    code, report = _lint_json(tmp_path, "--strict", capsys=capsys)
    assert [v for v in report["violations"] if v["severity"] != "info"] == []
    assert code == 0


@pytest.mark.parametrize("case", BAD, ids=[c["id"] for c in BAD])
def test_bad_inventory_is_caught(case: dict, tmp_path: Path, capsys) -> None:
    root = _materialise(case, tmp_path)
    expect = case["expect"]
    code, report = _lint_json(root, *(["--strict"] if case.get("strict") else []), capsys=capsys)
    hits = [(v["rule"], v["host"]) for v in report["violations"]]
    assert (expect["rule"], expect["host"]) in hits, report["violations"]
    assert code == 1
    # The fault is confined to the host it was planted on.
    assert {v["host"] for v in report["violations"] if v["severity"] != "info"} == {expect["host"]}, hits
    mine = [v for v in report["violations"] if (v["rule"], v["host"]) == (expect["rule"], expect["host"])]
    if "var" in expect:
        mine = [v for v in mine if v["var"] == expect["var"]]
        assert mine, report["violations"]
    if "file" in expect:
        assert any(v["file"] == str(root / expect["file"]) and v["line"] == expect.get("line", v["line"]) for v in mine), mine
    if "message" in expect:
        assert any(expect["message"] in v["message"] for v in mine), mine
    for also in expect.get("also", []):
        assert (also, expect["host"]) in hits, (also, hits)
    if not case.get("strict"):
        assert main(["lint", str(root)]) == 1
        capsys.readouterr()


@pytest.mark.parametrize("case", CLEAN, ids=[c["id"] for c in CLEAN])
def test_real_world_inventory_is_clean(case: dict, tmp_path: Path, capsys) -> None:
    root = _materialise(case, tmp_path)
    code, report = _lint_json(root, "--strict", capsys=capsys)
    assert [v for v in report["violations"] if v["severity"] != "info"] == [], report["violations"]
    assert code == 0
    notes = {(v["rule"], v["host"], v["var"]) for v in report["violations"]}
    for note in case.get("notes", []):
        assert (note["rule"], note["host"], note["var"]) in notes, (note, sorted(notes))
    assert report["hosts_checked"] == 4


@pytest.mark.parametrize("case", UNREADABLE, ids=[c["id"] for c in UNREADABLE])
def test_unreadable_corpus_input_is_refused(case: dict, tmp_path: Path) -> None:
    root = _materialise(case, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "vllm_fleet", "lint", str(root)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == case["expect"]["exit"], proc.stderr
    assert proc.stderr.startswith("vllm-fleet: ") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert case["expect"]["message"] in proc.stderr and str(root) in proc.stderr, proc.stderr


def test_every_violation_names_file_line_host_var(tmp_path: Path, capsys) -> None:
    case = next(c for c in CORPUS["cases"] if c["id"] == "driver-535-cuda13")
    root = _materialise(case, tmp_path)
    main(["lint", str(root)])
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"{root}/host_vars/hopper-1.yml:1: error VF104 host=hopper-1 var=vllm_fleet_driver_branch: ")
    assert "upgrade the driver to 580" in line


def test_did_you_mean(tmp_path: Path, capsys) -> None:
    case = next(c for c in CORPUS["cases"] if c["id"] == "misspelt-serving-key")
    main(["lint", str(_materialise(case, tmp_path))])
    assert "unknown key 'max_model_length'; did you mean 'max_model_len'?" in capsys.readouterr().out


def test_all_errors_at_once(tmp_path: Path, capsys) -> None:
    """Faults on three hosts are all reported in one run, sorted by file."""
    _write(tmp_path, CORPUS["base"])
    _write(tmp_path, {
        "host_vars/hopper-1.yml": {"vllm_fleet_driver_branch": 535, "vllm_fleet_overrides": {"serving": {"tool_call_parser": "qwen3"}}},
        "host_vars/spark-1.yml": {"vllm_fleet_overrides": {"serving": {"max_model_len": 262144}}},
    })
    code, report = _lint_json(tmp_path, capsys=capsys)
    found = {(v["rule"], v["host"]) for v in report["violations"]}
    assert {("VF104", "hopper-1"), ("VF304", "hopper-1"), ("VF203", "spark-1")} <= found
    files = [v["file"] for v in report["violations"] if v["severity"] != "info"]
    assert files == sorted(files)
    assert code == 1


def test_example_inventory_lints_clean(capsys) -> None:
    assert main(["lint", str(REPO / "inventory" / "example")]) == 0
    out = capsys.readouterr().out
    assert "10 host(s) checked" in out and " 0 error(s)" in out


def test_example_reports_what_vllm_reads_on_spark(capsys) -> None:
    """The seed's Spark env vars are kept; lint says which ones vLLM 0.28.0 ignores."""
    main(["lint", str(REPO / "inventory" / "example"), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    spark = {(v["rule"], v["var"].rsplit(".", 1)[-1]) for v in report["violations"] if v["host"] == "spark-01.example.net"}
    assert ("VF306", "VLLM_USE_FLASHINFER_MOE_FP4") in spark
    assert ("VF306", "VLLM_FP8_MOE_BACKEND") in spark
    assert ("VF306", "FLASHINFER_DISABLE_VERSION_CHECK") in spark  # an info: read by FlashInfer


@pytest.mark.parametrize("content", [b"all:\n  children:\n    hopper: {hosts: {h1: ", b"\x00\x01\x02\xff\xfe binary", b""],
                         ids=["truncated", "binary", "empty"])
def test_unreadable_input_is_exit_2_with_a_sentence(content: bytes, tmp_path: Path) -> None:
    bad = tmp_path / "hosts.yml"
    bad.write_bytes(content)
    proc = subprocess.run([sys.executable, "-m", "vllm_fleet", "lint", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("vllm-fleet: ") and str(bad) in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for argv in (["lint"], ["lint", str(tmp_path / "missing")], ["lint", "--from-json", str(tmp_path / "nope.json")]):
        proc = subprocess.run([sys.executable, "-m", "vllm_fleet", *argv], capture_output=True, text=True)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_from_json_matches_path(tmp_path: Path, capsys) -> None:
    case = next(c for c in CORPUS["cases"] if c["id"] == "a100-in-hopper-group")
    root = _materialise(case, tmp_path / "inv")
    (tmp_path / "empty.cfg").write_text("[defaults]\n")
    listing = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(root), "--list"],
                             capture_output=True, text=True, check=True,
                             env={"ANSIBLE_CONFIG": str(tmp_path / "empty.cfg"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    (tmp_path / "inv.json").write_text(listing.stdout)
    code = main(["lint", "--from-json", str(tmp_path / "inv.json"), "--format", "json"])
    from_json = {(v["rule"], v["host"], v["var"]) for v in json.loads(capsys.readouterr().out)["violations"]}
    main(["lint", str(root), "--format", "json"])
    from_path = {(v["rule"], v["host"], v["var"]) for v in json.loads(capsys.readouterr().out)["violations"]}
    assert code == 1 and from_json == from_path and ("VF101", "hopper-1", "vllm_fleet_gpu.compute_capability") in from_json


def test_github_format(tmp_path: Path, capsys) -> None:
    case = next(c for c in CORPUS["cases"] if c["id"] == "driver-535-cuda13")
    main(["lint", str(_materialise(case, tmp_path)), "--format", "github"])
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"::error file={tmp_path}/host_vars/hopper-1.yml,line=1,title=VF104 hopper-1::vllm_fleet_driver_branch: ")
