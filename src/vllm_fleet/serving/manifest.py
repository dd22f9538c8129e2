"""The manifest of one instance: what it serves, where, from which image and with which
arguments. The vllm role writes it next to the instance's files (/etc/vllm-fleet/<name>.json);
the smoke suite, the watchdog and rollback read it instead of recomputing or parsing anything."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from vllm_fleet.serving.args import serve_args, serve_env, served_model_name
from vllm_fleet.serving.host import HostPlan

SCHEMA_VERSION = 1


def instance_manifest(plan: HostPlan, name: str, *, image_ref: str, unit: str, container: str,
                      api_key_file: str | None, ca_file: str | None = None) -> dict[str, Any]:
    inst = next((i for i in plan.instances if i.name == name), None)
    if inst is None:
        raise KeyError(f"the host plan has no instance {name!r} (it has {', '.join(i.name for i in plan.instances)})")
    cfg = plan.serving
    serving, smoke = cfg["serving"], cfg.get("smoke") or {}
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "instance": inst.name,
        "profile": plan.profile,
        "unit": unit,
        "container": container,
        "gpus": inst.gpus,
        "port": inst.port,
        "bind_address": plan.bind_address,
        # Clients (the smoke suite included) go through the proxy when there is one; the
        # watchdog judges vLLM itself at the backend.
        "url": inst.url,
        "backend_url": inst.backend_url,
        "proxied": inst.proxied,
        "ca_file": ca_file if inst.proxied else None,
        "model": {"id": cfg["model"]["id"], "revision": cfg["model"].get("revision") or "main",
                  "served_name": served_model_name(cfg)},
        "max_model_len": int(serving["max_model_len"]),
        "vllm_version": str(cfg["image"].get("vllm_version") or ""),
        "image": {"ref": image_ref, "digest": cfg["image"].get("digest")},
        "serve_args": serve_args(cfg),
        "env": serve_env(cfg),
        "api_key_file": api_key_file,
        "expect": {
            "tools": bool(serving.get("enable_auto_tool_choice")),
            "spec_decode": serving.get("speculative_config") is not None,
            "long_prompt_ratio": smoke.get("long_prompt_ratio"),
            "request_timeout_s": smoke.get("request_timeout_s"),
        },
    }
    # Identity of the serving configuration (no secrets in it): equal manifests serve alike.
    doc["config_sha256"] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return doc
