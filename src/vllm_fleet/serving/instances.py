"""The vLLM instances of a host: their names, GPUs and ports, and the default when the
inventory lists none. The schema, lint, the roles and smoke all take these rules from here."""

from __future__ import annotations

import re
from typing import Any

# An instance name becomes a systemd instance (vllm@NAME), a container name (vllm-NAME) and
# file names (NAME.args): letters, digits, '_' and '-', starting and ending with a letter or digit.
NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,30}[A-Za-z0-9])?$"
_NAME = re.compile(NAME_PATTERN)
DEFAULT_NAME = "main"
DEFAULT_PORT = 8000


def valid_name(name: Any) -> bool:
    return isinstance(name, str) and bool(_NAME.match(name))


def default_instances(tensor_parallel_size: int) -> list[dict[str, Any]]:
    """One instance `main` on the first tensor_parallel_size GPUs, port 8000."""
    return [{"name": DEFAULT_NAME, "gpus": list(range(int(tensor_parallel_size))), "port": DEFAULT_PORT}]


def host_instances(listed: list[dict[str, Any]] | None, tensor_parallel_size: int) -> list[dict[str, Any]]:
    """The instances a host serves: those the inventory lists, else the default one."""
    if listed:
        return [{"name": i.get("name"), "gpus": list(i.get("gpus") or []), "port": i.get("port")} for i in listed]
    return default_instances(tensor_parallel_size)


def unit_name(unit_prefix: str, name: str) -> str:
    return f"{unit_prefix}@{name}.service"


def container_name(container_prefix: str, name: str) -> str:
    return f"{container_prefix}{name}"
