"""What the upgrade and fault drills look at on a lab host: the container, the files the role
rendered, the weight cache, the kept releases and the upgrade lock, and whether the instance
really serves."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

# A one-token completion with the instance's own key and served name: proof of a working
# engine, which /health is not (vLLM may answer 200 with a dead engine). Served name, URL and CA
# (behind the proxy: https) from the instance's manifest (what the role deployed), the key from
# its file.
_MANIFEST = r"""m=/etc/vllm-fleet/main.json
read -r url model ca <<<"$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["url"], d["model"]["served_name"], d.get("ca_file") or "-")' $m)"
tls=(); [ "$ca" != - ] && tls=(--cacert "$ca")
"""
COMPLETION = _MANIFEST + r"""key=$(cat /etc/vllm-fleet/secrets/main/api-key 2>/dev/null || echo none)
curl -sf --max-time 10 "${tls[@]}" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d "{\"model\": \"$model\", \"prompt\": \"ping\", \"max_tokens\": 1}" "$url/v1/completions"
"""
HEALTH = _MANIFEST + r"""curl -sf -o /dev/null "${tls[@]}" "$url/health"
"""
# The status vLLM itself answers /health with (behind the proxy: on loopback at its backend port).
BACKEND_HEALTH_CODE = r"""curl -s -o /dev/null -w '%{http_code}' \
  "$(python3 -c 'import json; print(json.load(open("/etc/vllm-fleet/main.json"))["backend_url"])')/health"
"""


# The vllm role's default vllm_upgrade_lock_path.
UPGRADE_LOCK = "/run/lock/vllm-fleet-upgrade.lock"


def lab_overrides(inventory: Path) -> dict[str, Any]:
    """The lab's vllm_fleet_overrides (image from the lab registry), to extend in extravars."""
    offline = yaml.safe_load((inventory / "group_vars/all/offline.yml").read_text())
    return offline["vllm_fleet_overrides"]


def snapshot(host) -> dict[str, Any]:
    """The container and everything it starts from: image, arguments, environment, unit,
    wrapper, entrypoint, secrets (by digest: a failed assertion prints no key), and the
    weight cache."""
    info = json.loads(host.check_output("docker inspect vllm-main"))[0]
    return {
        "image": info["Config"]["Image"],
        "id": info["Id"],
        "started": info["State"]["StartedAt"],
        "cmd": info["Config"]["Cmd"],
        "args": host.file("/etc/vllm-fleet/main.args").content_string,
        "env": host.file("/etc/vllm-fleet/main.env").content_string,
        "unit": host.file("/etc/systemd/system/vllm@.service").content_string,
        "wrapper": host.file("/usr/local/libexec/vllm-fleet/vllm-run").content_string,
        "entrypoint": host.file("/usr/local/libexec/vllm-fleet/container-entrypoint").content_string,
        "secrets": host.check_output(
            "cd /etc/vllm-fleet/secrets/main && find . -type f -print0 | sort -z | xargs -0r sha256sum"),
        "markers": host.check_output(
            "find /var/lib/vllm-fleet/hf-cache -path '*/.vllm-fleet/*.complete' -exec sha256sum {} + | sort"),
        "cache": host.check_output("find /var/lib/vllm-fleet/hf-cache -type f | wc -l"),
    }


def release(host, slot: str = "verified") -> dict[str, Any] | None:
    """The marker of instance main's kept release (verified: what last passed smoke on the host;
    previous: the verified release before it), or None when there is none."""
    out = host.run(f"cat /etc/vllm-fleet/{slot}/main.json")
    return json.loads(out.stdout) if out.rc == 0 else None


def lock_held(host) -> bool:
    """Whether the host's upgrade lock (upgrade.yml, rollback.yml, the smoke stage's marking) is held."""
    return host.run(f"test -e {UPGRADE_LOCK}").rc == 0


def serves(host) -> bool:
    return host.run(HEALTH).rc == 0


def completes(host) -> bool:
    return host.run(COMPLETION).rc == 0


def kill_after_changed(host: str, task: str, run_dir: Path, killed: dict[str, float]) -> Callable[[dict[str, Any]], bool]:
    """An ansible-runner event handler that SIGKILLs every process of the run in `run_dir` (their
    command lines name it) right after `task` changed something on `host`; it notes when in
    killed["at"]."""
    def on_event(event: dict[str, Any]) -> bool:
        data = event.get("event_data", {})
        if (not killed and event.get("event") == "runner_on_ok" and data.get("host") == host
                and data.get("task") == task and data.get("res", {}).get("changed")):
            subprocess.run(["pkill", "-KILL", "-f", f"ansible-playbook.*{run_dir}"], check=False)
            killed["at"] = time.monotonic()
        return True
    return on_event
