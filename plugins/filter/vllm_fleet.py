"""Jinja filters that hand the serving profiles to roles and templates.

They call vllm_fleet's Python code so that the merge rules and the flag rendering exist once,
shared with lint and the smoke tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

try:
    import vllm_fleet  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vllm_fleet.checks import default_instances, preflight_problems  # noqa: E402
from vllm_fleet.profiles import resolve_serving  # noqa: E402
from vllm_fleet.serve_args import serve_args, serve_env  # noqa: E402


def vllm_fleet_serving(profile_name, overrides=None):
    """profile name (+ vllm_fleet_overrides) -> the host's effective serving configuration."""
    return resolve_serving(str(profile_name), dict(overrides or {}))


def vllm_fleet_serve_args(serving_config, port=8000):
    return serve_args(serving_config, int(port))


def vllm_fleet_serve_env(serving_config):
    return serve_env(serving_config)


def vllm_fleet_instances(instances, serving_config):
    """The host's instances, or the default single instance sized for tensor parallelism."""
    if instances:
        return list(instances)
    return default_instances(serving_config["serving"].get("tensor_parallel_size") or 1)


def vllm_fleet_preflight_problems(serving_config, gpu_facts, free_disk_bytes, host):
    """Sentences saying why the host must stop before any download; empty when it may go on."""
    return preflight_problems(serving_config, gpu_facts, int(free_disk_bytes), dict(host))


def vllm_fleet_drifted(inspect_results, fingerprint_results):
    """Instances whose running container started from other files than those on disk.

    Both arguments are loop results over the instances: `docker inspect vllm-<name>` and
    `vllm-run --fingerprint`. No container (inspect failed) is not drift: the start task starts
    it from the files on disk. A container without the label predates the fingerprint: drift."""
    drifted = []
    for inspected, fingerprint in zip(inspect_results or [], fingerprint_results or []):
        if inspected.get("rc") != 0 or fingerprint.get("rc") != 0:
            continue
        try:
            labels = json.loads(inspected["stdout"])[0]["Config"].get("Labels") or {}
        except (ValueError, LookupError, TypeError):
            continue
        if labels.get("io.vllm-fleet.files") != fingerprint["stdout"].strip():
            drifted.append(inspected["item"]["name"])
    return drifted


class FilterModule:
    def filters(self):
        return {
            "vllm_fleet_serving": vllm_fleet_serving,
            "vllm_fleet_serve_args": vllm_fleet_serve_args,
            "vllm_fleet_serve_env": vllm_fleet_serve_env,
            "vllm_fleet_instances": vllm_fleet_instances,
            "vllm_fleet_preflight_problems": vllm_fleet_preflight_problems,
            "vllm_fleet_drifted": vllm_fleet_drifted,
        }
