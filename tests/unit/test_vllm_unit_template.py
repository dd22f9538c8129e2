"""Render the vllm role's unit, wrapper, .args and .env files for every serving profile, then
run the real wrapper against a fake docker to prove what the container would receive.

The role writes `docker run` arguments one per line and the wrapper reads them into a bash
array, so no argument passes through systemd's or a shell's quoting. The proof is end to end:
the argv the fake docker records must end with exactly `vllm_fleet_serve_args(config)`.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vllm_fleet.serving.profiles import resolve_serving
from vllm_fleet.serving.args import serve_args, serve_env

from tests.collection import plugin
from tests.unit.vllm_render import API_KEY, CASES, _case_profile, _instances, _unified


def _config(case: str) -> dict:
    return resolve_serving(_case_profile(case), CASES[case].get("overrides", {}))


def _run_wrapper(out: Path, instance: str) -> list[str]:
    (out / "argv.json").unlink(missing_ok=True)
    subprocess.run(
        ["bash", str(out / "libexec" / "vllm-run"), str(out / "etc" / f"{instance}.args")],
        check=True, timeout=30,
    )
    return json.loads((out / "argv.json").read_text())


FAKE_VLLM = """#!{python}
import json, os, sys
with open({out!r}, "w") as fh:
    json.dump({{"argv": sys.argv[1:], "key": os.environ.get("VLLM_API_KEY")}}, fh)
"""


def _run_entrypoint(out: Path, instance: str, cmd: list[str]) -> dict:
    """Run the rendered container entrypoint here, as docker would (entrypoint + Cmd), with the
    secrets directory at its host path and a fake `vllm` first on PATH: what `vllm serve` gets."""
    script = (out / "libexec" / "container-entrypoint").read_text()
    script = script.replace("/run/secrets/vllm-fleet", str(out / "etc" / "secrets" / instance))
    entrypoint = out / f"entrypoint-{instance}"
    entrypoint.write_text(script)
    bindir = out / "fakebin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "vllm"
    fake.write_text(FAKE_VLLM.format(python=sys.executable, out=str(out / "vllm.json")))
    fake.chmod(0o755)
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}
    subprocess.run(["/bin/sh", str(entrypoint), *cmd], check=True, timeout=30, env=env)
    return json.loads((out / "vllm.json").read_text())


def _exec_lines(unit_text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit_text.splitlines() if line.startswith(key + "=")]


@pytest.mark.parametrize("case", sorted(CASES))
def test_container_receives_exactly_the_serve_args(rendered, case):
    out = rendered[case]
    config = _config(case)
    expected_serve = serve_args(config, 8000)
    image_ref = f"{config['image']['repository']}@{config['image']['digest']}"
    _, instances = _instances(_case_profile(case))
    for inst in instances:
        argv = _run_wrapper(out, inst["name"])
        assert argv[0] == "run"
        assert image_ref in argv, argv
        assert "@sha256:" in image_ref
        idx = argv.index(image_ref)
        # Everything after the image is the container's Cmd, given to the entrypoint unchanged;
        # the entrypoint reads the mounted secrets and execs `vllm serve "$@"`.
        assert argv[idx + 1:] == expected_serve
        ran = _run_entrypoint(out, inst["name"], argv[idx + 1:])
        assert ran["argv"] == ["serve", *expected_serve]
        assert ran["key"] == API_KEY
        opts = argv[1:idx]
        assert opts[opts.index("--entrypoint") + 1] == "/run/vllm-fleet/entrypoint"
        volumes = [opts[i + 1] for i, o in enumerate(opts) if o == "--volume"]
        assert f"{out / 'etc' / 'secrets' / inst['name']}:/run/secrets/vllm-fleet:ro" in volumes
        assert f"{out / 'libexec' / 'container-entrypoint'}:/run/vllm-fleet/entrypoint:ro" in volumes
        assert opts[opts.index("--gpus") + 1] == '"device=' + ",".join(map(str, inst["gpus"])) + '"'
        # Bound to 0.0.0.0, so served through the proxy: vLLM itself only on loopback, port + 10000.
        assert opts[opts.index("--publish") + 1] == f"127.0.0.1:{inst['port'] + 10000}:8000"
        assert opts[opts.index("--name") + 1] == f"vllm-{inst['name']}"
        assert opts[opts.index("--env-file") + 1] == str(out / "etc" / f"{inst['name']}.env")
        assert opts[opts.index("--volume") + 1].endswith(":/root/.cache/huggingface:ro")
        assert opts[opts.index("--pull") + 1] == "never"
        assert opts[opts.index("--runtime") + 1] == "nvidia"
        assert opts[opts.index("--cap-drop") + 1] == "ALL"
        assert "--privileged" not in opts
        assert API_KEY not in argv


@pytest.mark.parametrize("case", sorted(CASES))
def test_unit_runs_the_wrapper_and_holds_no_secret(rendered, case):
    out = rendered[case]
    unit = (out / "unit" / "vllm@.service").read_text()
    assert API_KEY not in unit
    assert _exec_lines(unit, "ExecStart") == [f"{out / 'libexec' / 'vllm-run'} {out / 'etc'}/%i.args"]
    pre = _exec_lines(unit, "ExecStartPre")
    assert pre[0] == f"-{out / 'docker'} rm -f vllm-%i"
    drop_caches = "-/bin/sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches'"  # best effort
    # Unified-memory hosts only (what vllm_fleet_gpu.unified_memory declares).
    assert (drop_caches in pre) == _unified(case)
    assert _exec_lines(unit, "Restart") == ["on-failure"]
    assert _exec_lines(unit, "TimeoutStopSec")
    for inst in _instances(_case_profile(case))[1]:
        args_file = out / "etc" / f"{inst['name']}.args"
        assert API_KEY not in args_file.read_text()
        assert "" not in args_file.read_text().split("\n")[:-1], "an empty line would become an empty argument"


@pytest.mark.parametrize("case", sorted(CASES))
def test_env_file_has_profile_env_and_offline_secrets_apart(rendered, case):
    out = rendered[case]
    config = _config(case)
    for inst in _instances(_case_profile(case))[1]:
        path = out / "etc" / f"{inst['name']}.env"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        pairs = [line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")]
        env = dict(pairs)
        assert len(env) == len(pairs), "duplicate variables in the env file"
        for key, value in serve_env(config).items():
            assert env[key] == value
        assert env["HF_HUB_OFFLINE"] == "1"
        # docker inspect shows --env-file variables: the key is in the mounted secrets file only.
        assert "VLLM_API_KEY" not in env
        assert API_KEY not in path.read_text()
        secrets = out / "etc" / "secrets" / inst["name"]
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
        assert stat.S_IMODE((secrets / "api-key").stat().st_mode) == 0o600
        assert (secrets / "api-key").read_text() == API_KEY
        assert not (secrets / "hf-token").exists()


def _systemd_problems(analyze: str, unit: Path) -> list[str]:
    """What `systemd-analyze verify` objects to in `unit`. Its exit code alone is not enough:
    it exits 0 on a setting it cannot parse (Restart=sometimes) and only says it ignores it."""
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if str(unit) in line]
    return ([f"exit {proc.returncode}"] if proc.returncode else []) + lines


def test_systemd_accepts_the_unit(rendered, tmp_path):
    """systemd-analyze parses the rendered unit without a complaint (where the tool exists), and
    the same check does object to a unit with a setting systemd cannot parse."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not available")
    out = rendered["spark"]
    unit = tmp_path / "vllm@main.service"
    text = (out / "unit" / "vllm@.service").read_text()
    # docker.service is not on this machine; drop the dependency lines for the parse.
    unit.write_text("\n".join(line for line in text.splitlines() if "docker.service" not in line) + "\n")
    assert _systemd_problems(analyze, unit) == []
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    assert any("sometimes" in p for p in _systemd_problems(analyze, unit))


def test_container_is_labelled_with_the_fingerprint_of_its_files(rendered):
    """What lets the role see a container left on older files by a run killed before its
    restart handler: the label changes with any file the container starts from."""
    out = rendered["spark"]
    wrapper = out / "libexec" / "vllm-run"
    args = out / "etc" / "gpu0.args"

    def fingerprint() -> str:
        return subprocess.run(["bash", str(wrapper), "--fingerprint", str(args)], check=True,
                              capture_output=True, text=True, timeout=30).stdout.strip()

    argv = _run_wrapper(out, "gpu0")
    assert argv[1:3] == ["--label", f"io.vllm-fleet.files={fingerprint()}"]
    assert len(fingerprint()) == 64
    env = out / "etc" / "gpu0.env"
    original = env.read_text()
    try:
        before = fingerprint()
        env.write_text(original + "EXTRA=1\n")
        assert fingerprint() != before
    finally:
        env.write_text(original)
    assert fingerprint() == before
    assert fingerprint() != subprocess.run(["bash", str(wrapper), "--fingerprint", str(out / "etc" / "gpu-1.args")],
                                           check=True, capture_output=True, text=True).stdout.strip()


def test_drift_filter_names_containers_on_other_files():
    drifted = plugin("filter", "fleet").FilterModule().filters()["drifted"]

    def inspected(name, label, rc=0):
        labels = {"io.vllm-fleet.files": label} if label else None
        return {"item": {"name": name}, "rc": rc, "stdout": json.dumps([{"Config": {"Labels": labels}}])}

    def printed(value, rc=0):
        return {"rc": rc, "stdout": value + "\n"}

    results = [inspected("same", "aa"), inspected("older", "aa"), inspected("unlabelled", None),
               inspected("gone", "", rc=1), inspected("unknown", "aa")]
    prints = [printed("aa"), printed("bb"), printed("cc"), printed("dd"), printed("", rc=2)]
    assert drifted(results, prints) == ["older", "unlabelled"]
