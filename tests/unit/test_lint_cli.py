"""`vllm-fleet lint` as a command: how sources are given, what every line names, the summary
lines, fleet membership and the sources only Ansible can read."""

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
EXAMPLE = REPO / "inventory" / "example"


def _write(root: Path, files: dict) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    return root


def base(root: Path, files: dict) -> Path:
    _write(root, CORPUS["base"])
    return _write(root, files)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vllm_fleet", *argv], capture_output=True, text=True, timeout=120)


def test_inventory_option_like_ansible(tmp_path: Path, capsys) -> None:
    """lint's own messages say "-i": it takes -i/--inventory (repeatable) as well as PATHs."""
    root = base(tmp_path, {"host_vars/hopper-1.yml": {}})
    assert main(["lint", "-i", str(EXAMPLE)]) == 0
    by_option = capsys.readouterr().out.splitlines()[-2:]
    assert main(["lint", str(EXAMPLE)]) == 0
    assert [line.split(" in ")[0] for line in capsys.readouterr().out.splitlines()[-2:]] == \
           [line.split(" in ")[0] for line in by_option]
    hosts = root / "hosts.yml"
    assert main(["lint", "--inventory", str(hosts), "-i", str(root / "group_vars" / ".." / "hosts.yml"),
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["hosts_checked"] == 4


def test_from_json_with_a_path_is_refused(tmp_path: Path) -> None:
    listing = tmp_path / "inv.json"
    listing.write_text("{}")
    for extra in ([str(EXAMPLE)], ["-i", str(EXAMPLE)]):
        proc = run("lint", "--from-json", str(listing), *extra)
        assert proc.returncode == 2
        assert proc.stderr.startswith("vllm-fleet: --from-json") and str(EXAMPLE) in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_help_explains_fleet_membership() -> None:
    proc = run("lint", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "a host is a fleet host when it has vllm_fleet_profile" in text
    assert "VF002" in text and "-i PATH, --inventory PATH" in text
    assert "ansible-inventory -i SOURCE --list --export" in text and "possibly set" in text


def test_github_summary_counts_what_it_printed(tmp_path: Path, capsys) -> None:
    root = base(tmp_path, {"host_vars/hopper-1.yml": {"vllm_fleet_driver_branch": 535},
                           "host_vars/spark-1.yml": {"vllm_fleet_bind_address": "0.0.0.0"}})
    assert main(["lint", str(root), "--format", "github"]) == 1
    lines = capsys.readouterr().out.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 2
    assert lines[-1].endswith(": 2 error(s), 0 warning(s)"), lines[-1]
    assert main(["lint", str(root), "--format", "github", "--show-info"]) == 1
    lines = capsys.readouterr().out.splitlines()
    notices = [line for line in lines if line.startswith("::notice ")]
    assert lines[-1].endswith(f": 2 error(s), 0 warning(s), {len(notices)} note(s)"), lines[-1]


def test_every_line_names_file_host_and_variable(tmp_path: Path, capsys) -> None:
    """A missing variable is named, at the file that gives the host its profile."""
    root = base(tmp_path, {"group_vars/hopper.yml": {
        "vllm_fleet_profile": "hopper", "vllm_fleet_gpu": CORPUS["base"]["group_vars/hopper.yml"]["vllm_fleet_gpu"]}})
    assert main(["lint", str(root), "--show-info"]) == 1
    lines = capsys.readouterr().out.splitlines()[:-1]
    assert f"{root}/group_vars/hopper.yml:1: error VF001 host=hopper-1 var=vllm_fleet_cpu_arch: " \
           "vllm_fleet_cpu_arch is not set" in "\n".join(lines)
    for line in lines:
        assert "var=:" not in line and not line.startswith("<inventory>") and " host= " not in line, line


def test_nested_override_error_has_its_own_line(tmp_path: Path, capsys) -> None:
    root = base(tmp_path, {"host_vars/blackwell-1.yml": "vllm_fleet_overrides:\n  serving:\n    max_num_seqs: 4\n"
                                                        "    gpu_memory_utilization: 1.5\n"})
    main(["lint", str(root)])
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"{root}/host_vars/blackwell-1.yml:4: error VF001 host=blackwell-1 "
                            "var=vllm_fleet_overrides.serving.gpu_memory_utilization: ")


def test_hosts_outside_the_fleet(tmp_path: Path, capsys) -> None:
    """A bastion with group all's fleet defaults is left out (one note); a host with fleet
    variables of its own but no profile is VF002, naming them and the fix."""
    inventory = yaml.safe_load(yaml.safe_dump(CORPUS["base"]["hosts.yml"]))
    inventory["all"]["children"]["bastion"] = {"hosts": {"bastion-1": None, "jump-2": None}}
    inventory["all"]["children"]["newgpu"] = {"hosts": {"gpu-9": None}}
    root = base(tmp_path, {"hosts.yml": inventory, "host_vars/gpu-9.yml": {"vllm_fleet_gpu": {"name": "x"}}})
    assert main(["lint", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"{root}/host_vars/gpu-9.yml:1: error VF002 host=gpu-9 var=vllm_fleet_gpu: this host has vllm_fleet_gpu " \
           f"(from {root}/host_vars/gpu-9.yml) but no vllm_fleet_profile" in out
    assert "Set vllm_fleet_profile if it is meant to serve, or remove these variables" in out
    assert "bastion-1" not in out and "4 host(s) checked" in out
    assert main(["lint", str(root), "--show-info"]) == 1
    out = capsys.readouterr().out
    [note] = [line for line in out.splitlines() if "info VF002" in line]
    assert "3 host(s) have no vllm_fleet_profile" in note and "bastion-1, gpu-9, jump-2" in note


def test_hosts_outside_the_fleet_from_json(tmp_path: Path, capsys) -> None:
    """`--list` JSON flattens group vars into hosts: a fleet variable every host has is group all's."""
    listing = {"all": {"children": ["hopper", "ungrouped"]},
               "hopper": {"hosts": ["hopper-1"]}, "ungrouped": {"hosts": ["bastion-1", "gpu-9"]},
               "_meta": {"hostvars": {
                   "hopper-1": {"vllm_fleet_driver_branch": 580, **{k: v for k, v in CORPUS["base"]["group_vars/hopper.yml"].items()}},
                   "bastion-1": {"vllm_fleet_driver_branch": 580},
                   "gpu-9": {"vllm_fleet_driver_branch": 580, "vllm_fleet_cpu_arch": "x86_64"}}}}
    path = tmp_path / "inv.json"
    path.write_text(json.dumps(listing))
    assert main(["lint", "--from-json", str(path), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    errors = [(v["rule"], v["host"], v["var"], v["file"]) for v in report["violations"] if v["severity"] == "error"]
    assert errors == [("VF002", "gpu-9", "vllm_fleet_cpu_arch", str(path))]


def test_no_fleet_host_is_exit_2_naming_the_source(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text("[bastion]\nb1\n")
    (tmp_path / "placeholder.yml").write_text("")
    proc = run("lint", str(tmp_path))
    assert proc.returncode == 2 and str(tmp_path) in proc.stderr and "no fleet hosts" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_dynamic_source_without_ansible_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from vllm_fleet.inventory import dynamic

    script = tmp_path / "inventory.py"
    script.write_text("#!/usr/bin/env python3\nprint('{}')\n")
    script.chmod(0o755)
    monkeypatch.setattr(dynamic, "ansible_inventory", lambda: None)
    assert main(["lint", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vllm-fleet: {script} is an inventory script, which only Ansible can run, and "
                          "ansible-inventory is not installed")
    assert len(err.strip().splitlines()) == 1


def test_templated_and_unsafe_values_get_their_own_verdicts(tmp_path: Path, capsys) -> None:
    """Hosts share verdicts by their values; a template and the same text marked !unsafe differ."""
    root = base(tmp_path, {"host_vars/spark-1.yml": "vllm_fleet_bind_address: '{{ x }}'\n",
                           "host_vars/hopper-1.yml": "vllm_fleet_bind_address: !unsafe '{{ x }}'\n"})
    main(["lint", str(root), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    found = {(v["rule"], v["host"]) for v in report["violations"] if v["rule"] in ("VF001", "VF003")}
    assert found == {("VF003", "spark-1"), ("VF001", "hopper-1")}
