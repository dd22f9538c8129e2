"""Security properties of converged lab hosts, read-only and quick: the API key is in no command
line, unit, .args file, `docker inspect` or Ansible output; secret files are root-only; the
container is unprivileged with every capability dropped and a read-only weights cache; apt
sources the roles wrote are pinned to their keyrings (no apt-key); images run by digest.

And a role-level check: a non-loopback bind address without an API key stops the vllm role with
a clear message before any docker command (pull included) runs."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.lab.site_run import REPO

pytestmark = pytest.mark.lab

H100, H200, SPARK = "vllm-fleet-lab-1", "vllm-fleet-lab-2", "vllm-fleet-lab-3"
SERVING = (H100, H200, SPARK)


def _api_key(fresh_lab) -> str:
    lab_vars = yaml.safe_load((fresh_lab.paths.inventory / "group_vars/all/lab.yml").read_text())
    key = lab_vars["vault_vllm_fleet_api_key"]
    key_file = fresh_lab.paths.root / "api-key"
    if key_file.exists():
        assert key_file.read_text().strip() == key
    assert len(key) >= 16
    return key


def _inspect(host) -> dict:
    return json.loads(host.check_output("docker inspect vllm-main"))[0]


@pytest.mark.parametrize("name", SERVING)
def test_api_key_in_no_argv_unit_args_or_inspect(first_converge, fresh_lab, name) -> None:
    key = _api_key(fresh_lab)
    host = fresh_lab.host(name)
    places = {
        "ps -eo args": host.check_output("ps -eo args"),
        "vllm@.service": host.file("/etc/systemd/system/vllm@.service").content_string,
        "*.args": host.check_output("cat /etc/vllm-fleet/*.args"),
        "*.env": host.check_output("cat /etc/vllm-fleet/*.env"),
        "docker inspect vllm-main": host.check_output("docker inspect vllm-main"),
        "systemctl show vllm@main": host.check_output("systemctl show vllm@main"),
    }
    leaks = [where for where, text in places.items() if key in text]
    assert leaks == [], f"the API key shows in: {leaks}"
    env = _inspect(host)["Config"]["Env"]
    assert not [e for e in env if e.startswith(("VLLM_API_KEY=", "HF_TOKEN="))], env


def test_spark_container_gets_the_key_from_the_secrets_file(first_converge, fresh_lab) -> None:
    """The key still reaches vLLM: behind the proxy, on loopback, it refuses a request without
    the key and serves one with it."""
    key = _api_key(fresh_lab)
    host = fresh_lab.host(SPARK)
    secrets = host.file("/etc/vllm-fleet/secrets/main/api-key")
    assert secrets.exists and secrets.content_string == key
    url = "http://127.0.0.1:18000/v1/models"  # vLLM itself, behind the proxy
    without = host.run(f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout.strip()
    assert without == "401", without
    header = shlex.quote(f"Authorization: Bearer {key}")
    # The header goes through stdin (-H @-), so the key is on no command line even here.
    with_key = host.run(f"printf '%s\\n' {header} | curl -s -o /dev/null -w '%{{http_code}}' -H @- {url}")
    assert with_key.stdout.strip() == "200", with_key.stdout + with_key.stderr


# Every way into the model vLLM answers, and what the proxy in front of the spark host must say
# to a client on another host without the key (vLLM's own --api-key leaves /invocations and
# /tokenize open: vllm issue #58144).
PROBES = (("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("GET", "/v1/models"),
          ("POST", "/invocations"), ("POST", "/tokenize"), ("POST", "/detokenize"), ("GET", "/metrics"),
          ("GET", "/version"), ("POST", "/pooling"), ("POST", "/score"), ("GET", "/v2/models"), ("GET", "/ping"))


def _probe(client, base: str, method: str, path: str, key: str | None, cacert: str) -> str:
    auth = f"-H @- <<< {shlex.quote('Authorization: Bearer ' + key)}" if key else ""
    body = "-H 'Content-Type: application/json' -d '{\"model\": \"x\", \"prompt\": \"hi\"}'" if method == "POST" else ""
    cmd = f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {cacert} -X {method} {body} {auth} {base}{path}"
    return client.run(f"bash -c {shlex.quote(cmd)}").stdout.strip()


def test_the_proxy_serves_only_keyed_paths_to_other_hosts(first_converge, fresh_lab, tmp_path) -> None:
    """From another lab host, over the network: no path answers without the key, the keyed
    paths answer with it, /invocations never, and vLLM's own port is not reachable at all."""
    key = _api_key(fresh_lab)
    spark, client = fresh_lab.host(SPARK), fresh_lab.host(H100)
    cert = spark.file("/etc/vllm-fleet/tls/server.crt").content_string
    client.run(f"printf '%s' {shlex.quote(cert)} > /tmp/spark-proxy.crt")
    base = f"https://{fresh_lab.address(SPARK)}:8000"
    anonymous = {f"{m} {p}": _probe(client, base, m, p, None, "/tmp/spark-proxy.crt") for m, p in PROBES}
    assert all(not code.startswith("2") for code in anonymous.values()), anonymous
    assert anonymous["GET /v1/models"] == "401" and anonymous["POST /invocations"] == "404", anonymous
    keyed = {f"{m} {p}": _probe(client, base, m, p, key, "/tmp/spark-proxy.crt") for m, p in PROBES}
    assert keyed["GET /v1/models"] == "200" and keyed["POST /tokenize"] == "200", keyed
    assert keyed["POST /invocations"] == "404" and keyed["POST /pooling"] == "404", keyed
    health = client.run(f"curl -s -o /dev/null -w '%{{http_code}}' --cacert /tmp/spark-proxy.crt {base}/health")
    assert health.stdout.strip() == "200"
    backend = client.run(f"curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://{fresh_lab.address(SPARK)}:18000/health")
    assert backend.stdout.strip() == "000", "vLLM's own port answers from another host: it is not on loopback only"
    plain = client.run(f"curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://{fresh_lab.address(SPARK)}:8000/health")
    assert plain.stdout.strip() in ("000", "400"), "the proxy answers plain HTTP"


def test_api_key_not_in_converge_output(first_converge, fresh_lab) -> None:
    key = _api_key(fresh_lab)
    r, _ = first_converge
    stdout = Path(r.config.artifact_dir, "stdout")
    text = stdout.read_text() if stdout.exists() else r.stdout.read()
    assert text, "the converge run left no stdout to check"
    assert key not in text, "the API key shows in the Ansible output of the converge"
    events = "\n".join(json.dumps(e.get("event_data", {}).get("res", {})) for e in r.events)
    assert key not in events, "the API key shows in a task result of the converge"


@pytest.mark.parametrize("name", SERVING)
def test_secret_files_are_root_only(first_converge, fresh_lab, name) -> None:
    host = fresh_lab.host(name)
    files = ["/etc/vllm-fleet/main.env"] + (["/etc/vllm-fleet/secrets/main/api-key"] if name == SPARK else [])
    for path in files:
        f = host.file(path)
        assert f.exists, path
        assert (f.mode, f.user, f.group) == (0o600, "root", "root"), path
    secrets = host.file("/etc/vllm-fleet/secrets/main")
    assert (secrets.mode, secrets.user) == (0o700, "root")
    d = host.file("/etc/vllm-fleet")
    assert d.user == "root" and not d.mode & 0o007, oct(d.mode)


@pytest.mark.parametrize("name", SERVING)
def test_container_is_confined(first_converge, fresh_lab, name) -> None:
    info = _inspect(fresh_lab.host(name))
    hc = info["HostConfig"]
    assert hc["Privileged"] is False
    assert [c.upper() for c in hc.get("CapDrop") or []] in (["ALL"], ["CAP_ALL"]), hc.get("CapDrop")
    assert not hc.get("CapAdd"), hc.get("CapAdd")
    assert any("no-new-privileges" in o for o in hc.get("SecurityOpt") or []), hc.get("SecurityOpt")
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    cache = mounts["/root/.cache/huggingface"]
    assert cache["Source"] == "/var/lib/vllm-fleet/hf-cache" and cache["RW"] is False
    for dest in ("/run/secrets/vllm-fleet", "/run/vllm-fleet/entrypoint"):
        assert mounts[dest]["RW"] is False, dest
    assert all(m["RW"] is False for m in mounts.values()), mounts


@pytest.mark.parametrize("name", SERVING)
def test_image_is_referenced_by_digest(first_converge, fresh_lab, name) -> None:
    host = fresh_lab.host(name)
    assert "@sha256:" in _inspect(host)["Config"]["Image"]
    args = host.file("/etc/vllm-fleet/main.args").content_string.splitlines()
    images = [a for a in args if "/vllm-standin" in a or "vllm-openai" in a]
    assert images and all("@sha256:" in a for a in images), images


@pytest.mark.parametrize("name", SERVING)
def test_apt_sources_are_signed_and_no_apt_key(first_converge, fresh_lab, name) -> None:
    host = fresh_lab.host(name)
    files = host.check_output("find /etc/apt/sources.list.d -type f -name '*.sources' -o -type f -name '*.list'").split()
    assert files, "no apt sources under /etc/apt/sources.list.d"
    unsigned = []
    for path in files:
        text = host.file(path).content_string
        if path.endswith(".sources"):
            stanzas = [s for s in text.split("\n\n") if "URIs:" in s and "Enabled: no" not in s]
            unsigned += [path for s in stanzas if "Signed-By:" not in s]
        else:
            lines = [ln for ln in text.splitlines() if ln.strip().startswith("deb")]
            unsigned += [path for ln in lines if "signed-by=" not in ln]
    assert unsigned == [], f"apt sources without Signed-By: {sorted(set(unsigned))}"
    # apt-key writes the global keyrings; with Signed-By nothing should.
    legacy = host.run("test -s /etc/apt/trusted.gpg")
    assert legacy.rc != 0, "/etc/apt/trusted.gpg (apt-key's keyring) is in use"
    extra = [f for f in host.check_output("ls -1 /etc/apt/trusted.gpg.d").split()
             if not f.startswith(("debian-archive-", "ubuntu-keyring-"))]
    assert extra == [], f"keys in apt's global trusted.gpg.d (apt-key style): {extra}"


# --- role level: non-loopback bind without a key ------------------------------------------------

FAKE_DOCKER = """#!/bin/sh
echo "$@" >> {log}
exit 1
"""


def test_public_bind_without_key_fails_before_any_docker_command(tmp_path) -> None:
    """The vllm role, run locally with a fake docker: bind 0.0.0.0 and no key stops it with a
    message naming the fix, and docker (so no pull, no prefetch) was never called."""
    ansible_playbook = Path(sys.executable).with_name("ansible-playbook")
    if not ansible_playbook.exists():
        pytest.skip("ansible-playbook is not installed next to this Python")
    calls = tmp_path / "docker-calls"
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER.format(log=shlex.quote(str(calls))))
    docker.chmod(0o755)
    for sub in ("etc", "unit", "libexec", "cache"):
        (tmp_path / sub).mkdir()
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "vllm_fleet_profile": "hopper",
        "vllm_fleet_gpu": {"count": 1},
        "vllm_fleet_bind_address": "0.0.0.0",
        "vllm_fleet_api_key": "",
        "vllm_config_dir": str(tmp_path / "etc"),
        "vllm_unit_dir": str(tmp_path / "unit"),
        "vllm_wrapper_path": str(tmp_path / "libexec" / "vllm-run"),
        "vllm_hf_cache_dir": str(tmp_path / "cache"),
        "vllm_docker_bin": str(docker),
        "vllm_file_owner": Path.home().owner() if os.geteuid() != 0 else "root",
        "vllm_file_group": Path.home().group() if os.geteuid() != 0 else "root",
    }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": {"public-no-key": host}}}))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "Serve", "hosts": "all", "gather_facts": False,
        "roles": [{"role": "vllm"}],
    }]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_LOCALHOST_WARNING="0")
    proc = subprocess.run([str(ansible_playbook), "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "vllm_fleet_bind_address is 0.0.0.0, which is not loopback, but vllm_fleet_api_key" in out, out[-3000:]
    assert "Set vllm_fleet_api_key" in out
    assert not calls.exists(), f"docker ran before the check: {calls.read_text()}"
    assert not list((tmp_path / "etc").iterdir()) and not list((tmp_path / "unit").iterdir())
