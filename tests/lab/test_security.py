"""Security properties of converged lab hosts, read-only and quick: the API key and the Hugging
Face token are in no command line, unit, .args file, `docker inspect`, journal or Ansible output
(the token also not while the prefetch runs, sampled, at -vvv); secret files are root-only; the
container is unprivileged with every capability dropped and a read-only weights cache; the apt
sources the roles wrote name keyrings that hold exactly the pinned keys (no apt-key), and a key
that is not pinned changes nothing; container addresses and loopback-published ports are not
reachable from other hosts (docker 20.10, moby/moby#45610); images run by digest; a host that
stops being exposed closes its proxy's port and serves on loopback again.

And a role-level check: a non-loopback bind address without an API key stops the vllm role with
a clear message before any docker command (pull included) runs."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from tests.lab.lab_hosts import FALLBACK, H1, H2, REAL_VLLM, SPARK
from tests.lab.drills import completes
from tests.lab.site_run import REPO, failed_messages, failures
from vllm_fleet_lab.keys import fingerprint
from vllm_fleet_lab.playbook import run_playbook

pytestmark = pytest.mark.lab

# Hosts 1 and 2 are the hopper stream's (tests/workers.py): tests that change a host, or use one
# as a client, take hosts 3-5.
SERVING = (pytest.param(H1, marks=pytest.mark.hopper), pytest.param(H2, marks=pytest.mark.hopper), SPARK)
# Where the vllm role keeps the prefetch's token (vllm_prefetch_secrets_dir/hf-token).
PREFETCH_TOKEN = "/etc/vllm-fleet/secrets/_prefetch/hf-token"


def _api_key(fresh_lab) -> str:
    lab_vars = yaml.safe_load((fresh_lab.paths.inventory / "group_vars/all/lab.yml").read_text())
    key = lab_vars["vault_vllm_fleet_api_key"]
    key_file = fresh_lab.paths.root / "api-key"
    if key_file.exists():
        assert key_file.read_text().strip() == key
    assert len(key) >= 16
    return key


def _hf_token(fresh_lab) -> str:
    """The lab's Hugging Face token (the Hub stand-in gates every repo with it), as the inventory
    gives it to the roles."""
    lab_vars = yaml.safe_load((fresh_lab.paths.inventory / "group_vars/all/lab.yml").read_text())
    assert lab_vars["vllm_fleet_hf_token"] == "{{ vault_vllm_fleet_hf_token }}"
    token = lab_vars["vault_vllm_fleet_hf_token"]
    assert token.startswith("hf_") and len(token) >= 20
    return token


def _inspect(host) -> dict:
    return json.loads(host.check_output("docker inspect vllm-main"))[0]


def _leaks(text_by_place: dict[str, str], secrets: dict[str, str]) -> list[str]:
    return [f"{what} in {where}" for where, text in text_by_place.items() for what, value in secrets.items()
            if value in text]


def _count_on_host(host, command: str, needle_file: str) -> int:
    """How many lines of `command`'s output hold the secret in needle_file, counted on the host
    (grep -f reads the secret from the file: it is on no command line, not even this one)."""
    result = host.run(f"{command} | grep -c -F -f {needle_file}")
    assert result.rc in (0, 1), result.stderr  # 2: grep could not read the needle file
    return int(result.stdout.strip() or 0)


@pytest.mark.parametrize("name", SERVING)
def test_api_key_in_no_argv_unit_args_or_inspect(first_converge, fresh_lab, name) -> None:
    key, token = _api_key(fresh_lab), _hf_token(fresh_lab)
    host = fresh_lab.host(name)
    places = {
        "ps -eo args": host.check_output("ps -ww -eo args"),
        "vllm@.service": host.file("/etc/systemd/system/vllm@.service").content_string,
        "*.args": host.check_output("cat /etc/vllm-fleet/*.args"),
        "*.env": host.check_output("cat /etc/vllm-fleet/*.env"),
        # Every container on the host, the proxy's included, not only the server's.
        "docker inspect (all containers)": host.check_output("docker ps -aq | xargs -r docker inspect"),
        "systemctl show vllm@main": host.check_output("systemctl show vllm@main"),
    }
    leaks = _leaks(places, {"the API key": key, "the HF token": token})
    assert leaks == [], f"secrets show: {leaks}"
    env = _inspect(host)["Config"]["Env"]
    assert not [e for e in env if e.startswith(("VLLM_API_KEY=", "HF_TOKEN="))], env
    # The journal since boot (the converge's prefetch included), searched on the host.
    assert host.file(PREFETCH_TOKEN).content_string == token
    assert _count_on_host(host, f"cat {PREFETCH_TOKEN}", PREFETCH_TOKEN) == 1  # the search itself works
    assert _count_on_host(host, "journalctl --no-pager -q -o verbose", PREFETCH_TOKEN) == 0, \
        "the HF token shows in the journal"


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


def _probe(client, base: str, method: str, path: str, key: str | None, cacert: str, model: str = "x") -> str:
    """The status code of one request; POST bodies name `model` (vLLM answers 404 for one it does
    not serve, on /tokenize too)."""
    auth = f"-H @- <<< {shlex.quote('Authorization: Bearer ' + key)}" if key else ""
    data = shlex.quote(json.dumps({"model": model, "prompt": "hi"}))
    body = f"-H 'Content-Type: application/json' -d {data}" if method == "POST" else ""
    cmd = f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {cacert} -X {method} {body} {auth} {base}{path}"
    return client.run(f"bash -c {shlex.quote(cmd)}").stdout.strip()


def test_the_proxy_serves_only_keyed_paths_to_other_hosts(first_converge, fresh_lab, tmp_path) -> None:
    """From another lab host, over the network: no path answers without the key, the keyed
    paths answer with it, /invocations never, and vLLM's own port is not reachable at all."""
    key = _api_key(fresh_lab)
    spark, client = fresh_lab.host(SPARK), fresh_lab.host(FALLBACK)
    cert = spark.file("/etc/vllm-fleet/tls/server.crt").content_string
    client.run(f"printf '%s' {shlex.quote(cert)} > /tmp/spark-proxy.crt")
    base = f"https://{fresh_lab.address(SPARK)}:8000"
    anonymous = {f"{m} {p}": _probe(client, base, m, p, None, "/tmp/spark-proxy.crt") for m, p in PROBES}
    assert all(not code.startswith("2") for code in anonymous.values()), anonymous
    assert anonymous["GET /v1/models"] == "401" and anonymous["POST /invocations"] == "404", anonymous
    served = json.loads(spark.file("/etc/vllm-fleet/main.json").content_string)["model"]["served_name"]
    keyed = {f"{m} {p}": _probe(client, base, m, p, key, "/tmp/spark-proxy.crt", served) for m, p in PROBES}
    assert keyed["GET /v1/models"] == "200" and keyed["POST /tokenize"] == "200", keyed
    assert keyed["POST /invocations"] == "404" and keyed["POST /pooling"] == "404", keyed
    health = client.run(f"curl -s -o /dev/null -w '%{{http_code}}' --cacert /tmp/spark-proxy.crt {base}/health")
    assert health.stdout.strip() == "200"
    backend = client.run(f"curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://{fresh_lab.address(SPARK)}:18000/health")
    assert backend.stdout.strip() == "000", "vLLM's own port answers from another host: it is not on loopback only"
    plain = client.run(f"curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://{fresh_lab.address(SPARK)}:8000/health")
    assert plain.stdout.strip() in ("000", "400"), "the proxy answers plain HTTP"


# The role's longest accepted key (roles/vllm/vars/main.yml __vllm_proxy_key_max_length).
LONGEST_KEY = 480
PROXY_KEY_MAP = "/etc/vllm-fleet/secrets/proxy/main.map"
PROXY_HTTP_CONF = "/etc/nginx/conf.d/00-vllm-fleet.conf"


def test_the_proxy_takes_the_longest_key_the_role_accepts(first_converge, fresh_lab) -> None:
    """nginx sizes a map's hash buckets by the CPU's cache line unless told (32 bytes in Debian's
    arm64 build, 64 in amd64's), too small for "Bearer <key>" with a key over ~38 characters.
    The host's configuration as the role wrote it takes the longest key the role accepts; without
    the role's shared settings file it does not."""
    spark = fresh_lab.host(SPARK)
    saved = spark.file(PROXY_KEY_MAP).content_string
    results = {}
    try:
        spark.run(f"printf '%s' {shlex.quote(chr(34) + 'Bearer ' + 'k' * LONGEST_KEY + chr(34) + ' 1;')} > {PROXY_KEY_MAP}")
        results["with"] = spark.run("nginx -t")
        spark.run(f"mv {PROXY_HTTP_CONF} /root/vllm-fleet-http.conf")
        results["without"] = spark.run("nginx -t")
    finally:
        spark.run(f"mv /root/vllm-fleet-http.conf {PROXY_HTTP_CONF} 2>/dev/null; printf '%s' {shlex.quote(saved)} > {PROXY_KEY_MAP}")
    assert spark.run("nginx -t").rc == 0
    assert results["with"].rc == 0, results["with"].stderr
    assert results["without"].rc != 0 and "could not build map_hash" in results["without"].stderr


def _run_output(r) -> tuple[str, str]:
    """A run's console output and its task results."""
    stdout = Path(r.config.artifact_dir, "stdout")
    text = stdout.read_text() if stdout.exists() else r.stdout.read()
    assert text, "the run left no stdout to check"
    return text, "\n".join(json.dumps(e.get("event_data", {}).get("res", {})) for e in r.events)


def test_api_key_not_in_converge_output(first_converge, fresh_lab) -> None:
    r, _ = first_converge
    text, events = _run_output(r)
    for what, value in (("the API key", _api_key(fresh_lab)), ("the HF token", _hf_token(fresh_lab))):
        assert value not in text, f"{what} shows in the Ansible output of the converge"
        assert value not in events, f"{what} shows in a task result of the converge"


# Wraps docker for the one prefetch below: `run` becomes create, inspect, start, so the prefetch
# container's configuration is on record (it runs with --rm and is gone afterwards).
WORK = "/root/.vllm-fleet-test"
# What shows that the sampler saw the prefetch: its command line in ps, its container in docker
# inspect (followed by the container's id). Bracketed so that a grep for them, whose own command
# line ps samples too, does not match itself.
SAMPLED_COMMAND = "--entrypoint[ ]hf"
SAMPLED_CONTAINER = '["]Id["]: ["]'
RECORDING_DOCKER = f"""#!/bin/sh
if [ "$1" = run ]; then
  shift
  id=$(docker create "$@") || exit $?
  docker inspect "$id" > {WORK}/prefetch-inspect.json
  # Starts once the sampler has recorded this command line and the container's inspect, so that
  # the test's check that it sampled them is not a race with a quick download.
  i=0
  until grep -q -e '{SAMPLED_COMMAND}' {WORK}/samples && grep -q '{SAMPLED_CONTAINER}'"$id" {WORK}/samples || [ $i -ge 300 ]; do
    sleep 0.1; i=$((i + 1))
  done
  exec docker start -a "$id"
fi
exec docker "$@"
"""
# Samples every process's command line and every container's configuration until told to stop.
SAMPLER = (f"nohup sh -c 'while [ ! -e {WORK}/stop ]; do ps -ww -eo args; docker ps -aq | xargs -r docker inspect;"
           f" sleep 0.1; done' > {WORK}/samples 2>&1 < /dev/null & echo $!")


def test_hf_token_never_shows_while_the_prefetch_runs(first_converge, fresh_lab, tmp_path) -> None:
    """The prefetch runs again on the Spark (its marker and one snapshot file removed, so `hf
    download` must ask the gated Hub stand-in, which answers only with the token), at -vvv, with
    `ps` and `docker inspect` of every container sampled on the host all along and the prefetch
    container's configuration recorded. The token is in none of them, nor in the journal: it
    reached `hf` only through the root-only file that HF_TOKEN_PATH names."""
    token = _hf_token(fresh_lab)
    host = fresh_lab.host(SPARK)
    token_file, tokens_dir = host.file(PREFETCH_TOKEN), host.file(PREFETCH_TOKEN.rsplit("/", 1)[0])
    assert token_file.content_string == token
    assert (token_file.mode, token_file.user, tokens_dir.mode, tokens_dir.user) == (0o600, "root", 0o700, "root")
    cache = "/var/lib/vllm-fleet/hf-cache"
    readme = f"find {cache}/hub -path '*/snapshots/*/README.md'"
    host.check_output(f"find {cache}/.vllm-fleet -name '*.complete' -delete && {readme} -delete")
    host.check_output(f"rm -rf {WORK} && mkdir -m 0700 {WORK} && printf '%s' {shlex.quote(RECORDING_DOCKER)} > {WORK}/docker"
                      f" && chmod 0755 {WORK}/docker")
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    # The role's own prefetch command; only the docker binary is wrapped.
    command = yaml.safe_load((REPO / "roles/vllm/defaults/main.yml").read_text())["vllm_prefetch_command"]
    sampler = int(host.check_output(SAMPLER))
    try:
        r = run_playbook("playbooks/vllm.yml", fresh_lab.paths.inventory, tmp_path / "run", limit=SPARK,
                         cmdline="-vvv", extravars={"vllm_prefetch_command": [f"{WORK}/docker", *command[1:]]})
    finally:
        host.run(f"touch {WORK}/stop; for i in $(seq 50); do kill -0 {sampler} 2>/dev/null || break; sleep 0.1; done")
    assert r.rc == 0, failed_messages(r)
    # The task's result is hidden (no_log), so what it did is read on the host.
    assert host.run(f"find {cache}/.vllm-fleet -name '*.complete' | grep -q .").rc == 0, "the prefetch did not run"
    assert host.run(f"{readme} | grep -q .").rc == 0, "the gated file was not downloaded again"

    text, events = _run_output(r)
    assert "ESTABLISH SSH CONNECTION" in text, "the run was not at -vvv"
    recorded = host.file(f"{WORK}/prefetch-inspect.json").content_string
    env = json.loads(recorded)[0]["Config"]["Env"]
    assert "HF_TOKEN_PATH=/run/secrets/vllm-fleet/hf-token" in env and not [e for e in env if e.startswith("HF_TOKEN=")], env
    samples = f"{WORK}/samples"
    # The sampler ran all along: it saw the prefetch's docker command and the containers.
    container = json.loads(recorded)[0]["Id"]
    assert host.run(f"grep -q -e '{SAMPLED_COMMAND}' {samples} && grep -q '{SAMPLED_CONTAINER}{container}' {samples}").rc == 0, \
        "the sampler did not see the prefetch's command line and container"
    places = {"the Ansible output at -vvv": text, "the task results": events, "the prefetch container's inspect": recorded}
    assert _leaks(places, {"the HF token": token}) == []
    assert _count_on_host(host, f"cat {samples}", PREFETCH_TOKEN) == 0, "the HF token shows in ps or in docker inspect"
    assert _count_on_host(host, f"journalctl --no-pager -q -o verbose --since '{since}'", PREFETCH_TOKEN) == 0, \
        "the HF token shows in the journal"
    host.run(f"rm -rf {WORK}")


@pytest.mark.parametrize("name", SERVING)
def test_secret_files_are_root_only(first_converge, fresh_lab, name) -> None:
    host = fresh_lab.host(name)
    files = ["/etc/vllm-fleet/main.env", PREFETCH_TOKEN] + (["/etc/vllm-fleet/secrets/main/api-key"] if name == SPARK else [])
    for path in files:
        f = host.file(path)
        assert f.exists, path
        assert (f.mode, f.user, f.group) == (0o600, "root", "root"), path
    for path in ("/etc/vllm-fleet/secrets", "/etc/vllm-fleet/secrets/main", PREFETCH_TOKEN.rsplit("/", 1)[0]):
        secrets = host.file(path)
        assert (secrets.mode, secrets.user) == (0o700, "root"), path
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


def _primary_fingerprints(host, keyring: str) -> list[str]:
    shown = host.check_output(f"d=$(mktemp -d) && gpg --batch --homedir $d --show-keys --with-colons {keyring}; rm -rf $d")
    records = [line.split(":") for line in shown.splitlines() if line.startswith(("pub:", "sub:", "fpr:"))]
    return [fpr[9] for rec, fpr in pairwise(records) if rec[0] == "pub" and fpr[0] == "fpr"]


@pytest.mark.parametrize("name", SERVING)
def test_apt_sources_are_signed_and_no_apt_key(first_converge, fresh_lab, name) -> None:
    """Every source is signed; the roles' own sources name a keyring that holds exactly the key
    the inventory pins, which is the lab mirror's key (the lab pins its keys as a site pins its
    mirror's)."""
    host = fresh_lab.host(name)
    offline = yaml.safe_load((fresh_lab.paths.inventory / "group_vars/all/offline.yml").read_text())
    # source file -> (pinning variable, lab key); the spark host's DGX OS keeps its own CUDA setup.
    roles = {"nvidia-container-toolkit": ("nvidia_container_toolkit_repo_key_fingerprints", "toolkit")}
    if name != SPARK:
        roles["cuda"] = ("cuda_repo_key_fingerprints", "cuda")
    for source, (variable, lab_key) in roles.items():
        text = host.file(f"/etc/apt/sources.list.d/{source}.sources").content_string
        signed_by = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Signed-By:")]
        assert len(signed_by) == 1 and signed_by[0].startswith("/etc/apt/keyrings/"), text
        keyring = host.file(signed_by[0])
        assert keyring.is_file and (keyring.user, keyring.mode) == ("root", 0o644), signed_by[0]
        pinned = offline[variable]
        assert pinned == [fingerprint(fresh_lab.paths, lab_key)]
        assert _primary_fingerprints(host, signed_by[0]) == pinned, f"{signed_by[0]} holds another key than {variable}"
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


def test_a_repository_key_that_is_not_pinned_changes_nothing(first_converge, fresh_lab, tmp_path) -> None:
    """The mirror serves another key where the CUDA key belongs (the toolkit repository's: a real
    lab key, so only the pin tells them apart). The cuda role stops at the key check with both
    fingerprints and the fix in its message; the keyrings and the apt sources are as they were."""
    host = fresh_lab.host(FALLBACK)
    offline = yaml.safe_load((fresh_lab.paths.inventory / "group_vars/all/offline.yml").read_text())
    state = ("stat -c '%n %s %Y' /etc/apt/keyrings/* /etc/apt/sources.list.d/*"
             " && sha256sum /etc/apt/keyrings/* /etc/apt/sources.list.d/*")
    before = host.check_output(state)
    assert "/etc/apt/keyrings/cuda.asc" in before
    r = run_playbook("playbooks/cuda.yml", fresh_lab.paths.inventory, tmp_path / "run", limit=FALLBACK,
                     extravars={"cuda_repo_key_url": f"{offline['nvidia_container_toolkit_repo_base_url']}/gpgkey"})
    assert r.rc != 0 and set(failures(r)) == {FALLBACK}
    failed = [e["event_data"] for e in r.events if e.get("event") == "runner_on_failed"]
    assert [f["task"] for f in failed] == ["Compare the repository key with the pinned fingerprints"], \
        failed_messages(r)
    message = failed[0]["res"]["msg"]
    served, pinned = fingerprint(fresh_lab.paths, "toolkit"), fingerprint(fresh_lab.paths, "cuda")
    assert f"has fingerprint {served}, but cuda_repo_key_fingerprints pins {pinned}" in message, message
    assert "Nothing was changed" in message and "set cuda_repo_key_fingerprints to that key's fingerprint" in message
    assert host.check_output(state) == before, "a key that is not pinned changed the keyrings or the apt sources"
    assert host.check_output("ls -d /tmp/ansible.*apt-signing-key 2>/dev/null | wc -l") == "0", "the downloaded key was left"


GUARD = "vllm-fleet-docker-port-guard.service"


def test_container_addresses_are_not_reachable_from_other_hosts(first_converge, fresh_lab) -> None:
    """moby/moby#45610 on Debian 12's docker 20.10: a neighbour that routes a container's address
    through the host reaches the container's port, though it is published on 127.0.0.1 only. The
    docker role's guard drops that; with the guard stopped the same request gets through (so the
    route works and the guard is what stops it); started again, it stops it again."""
    target = fresh_lab.host(SPARK)
    ip = target.check_output("docker inspect -f '{{.NetworkSettings.IPAddress}}' vllm-main")
    assert ip and target.service(GUARD).is_enabled and target.service(GUARD).is_running
    assert "docker.service" in target.check_output(f"systemctl show -p PartOf --value {GUARD}")
    assert GUARD in target.check_output("systemctl show -p Wants --value docker.service")
    # A client whose own containers do not use that address (the route would divert them).
    addresses = "docker ps -q | xargs -r docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}'"
    name = next((n for n in (FALLBACK, REAL_VLLM) if ip not in fresh_lab.host(n).check_output(addresses).split()), FALLBACK)
    client = fresh_lab.host(name)
    probe = f"curl -s -m 3 -o /dev/null -w '%{{http_code}}' http://{ip}:8000/health"
    route = f"{ip}/32 via {fresh_lab.address(SPARK)}"
    client.check_output(f"ip route replace {route}")
    try:
        guarded = client.run(probe).stdout.strip()
        target.check_output(f"systemctl stop {GUARD}")
        unguarded = client.run(probe).stdout.strip()
        target.check_output(f"systemctl start {GUARD}")
        again = client.run(probe).stdout.strip()
    finally:
        client.run(f"ip route del {route}")
        target.run(f"systemctl start {GUARD}")
    assert unguarded == "200", f"without the guard {name} does not reach {ip} either ({unguarded}): nothing is shown"
    assert (guarded, again) == ("000", "000"), f"{name} reaches the container at {ip}:8000 through {SPARK}"
    backend = json.loads(target.check_output("cat /etc/vllm-fleet/main.json"))["backend_url"]
    local = target.run(f"curl -s -o /dev/null -w '%{{http_code}}' {backend}/health").stdout.strip()
    assert local == "200", "the guard broke the published port on the host itself"


# --- role level: non-loopback bind without a key ------------------------------------------------

def _listeners(host, port: int) -> list[str]:
    """The processes listening on `port` (any address), as `ss` names them."""
    return [line for line in host.check_output("ss -Htlnp").splitlines() if f":{port} " in line]


def test_a_host_that_stops_being_exposed_closes_the_proxy_and_serves_on_loopback(first_converge, fresh_lab,
                                                                                  tmp_path) -> None:
    """The fallback host (loopback) exposed on all addresses behind its proxy, then back: the
    proxy's port is freed before the instance restarts to publish it on loopback (nginx held
    0.0.0.0:8000, and docker could not publish 127.0.0.1:8000: found by the control benchmark)."""
    host = fresh_lab.host(FALLBACK)
    manifest = json.loads(host.file("/etc/vllm-fleet/main.json").content_string)
    port = manifest["port"]
    assert not manifest["proxied"], "the fallback host should be on loopback as the lab makes it"
    exposed = run_playbook("playbooks/vllm.yml", fresh_lab.paths.inventory, tmp_path / "expose", limit=FALLBACK,
                           extravars={"vllm_fleet_bind_address": "0.0.0.0",
                                      "vllm_fleet_api_key": "{{ vault_vllm_fleet_api_key }}"})
    assert exposed.rc == 0 and failures(exposed) == {}, failed_messages(exposed)
    assert any("nginx" in line and f"0.0.0.0:{port} " in line for line in _listeners(host, port)), \
        _listeners(host, port)
    assert completes(host)
    back = run_playbook("playbooks/vllm.yml", fresh_lab.paths.inventory, tmp_path / "back", limit=FALLBACK)
    assert back.rc == 0 and failures(back) == {}, failed_messages(back)
    listening = _listeners(host, port)
    assert not [line for line in listening if "nginx" in line], f"the proxy still holds port {port}: {listening}"
    assert [line for line in listening if f"127.0.0.1:{port} " in line], listening
    assert json.loads(host.file("/etc/vllm-fleet/main.json").content_string) == manifest
    assert completes(host)


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
        "vars_files": [str(REPO / "playbooks/vars/contract.yml")],
        "roles": [{"role": "vllm_fleet.fleet.vllm"}],
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
