"""Sources only Ansible can read: inventory scripts and inventory plugin configurations.

An executable file starting with `#!` is the `script` plugin's; a `.yml`/`.yaml` file whose
top-level `plugin:` key names an inventory plugin is the `auto` plugin's (aws_ec2, netbox,
constructed...). Lint does not re-implement them: it runs `ansible-inventory -i SOURCE --list
--export` and reads that JSON like `--from-json` does.

`--export` keeps each group's own variables apart (instead of flattening them into every host),
so precedence and "which group set this" still work. Vars plugins are switched off for that
run (`ANSIBLE_VARS_ENABLED=''`): lint reads the source's group_vars/ and host_vars/ itself, as
for any other source, which keeps their file and line in its output and keeps a vault-encrypted
vars file from failing the run for want of a password.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from vllm_fleet.inventory.model import InventoryError

# A cloud inventory plugin may page through a large API; a hung script must still end the CI job.
TIMEOUT_S = 600
_ENV = {
    "ANSIBLE_VARS_ENABLED": "",
    # Ansible only warns about a source it cannot parse and goes on with an empty inventory.
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_FORCE_COLOR": "0",
}


def is_script(path: str, data: bytes) -> bool:
    """The `script` inventory plugin's file: executable, with an interpreter line."""
    return data.startswith(b"#!") and os.access(path, os.X_OK)


def is_plugin_config(path: str, parsed: Any) -> bool:
    """The `auto` plugin's file: YAML named .yml/.yaml with a top-level `plugin:` key."""
    return isinstance(parsed, dict) and bool(parsed.get("plugin")) and path.endswith((".yml", ".yaml"))


def ansible_inventory() -> str | None:
    """`ansible-inventory` of this Python's environment first (a virtualenv's), then PATH's."""
    beside = Path(sys.executable).parent / "ansible-inventory"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("ansible-inventory")


def list_source(path: str, what: str) -> dict[str, Any]:
    """The `ansible-inventory --list --export` JSON of one source; `what` says what the source is."""
    exe = ansible_inventory()
    command = f"ansible-inventory -i {path} --list --export"
    if exe is None:
        raise InventoryError(
            f"{path} is {what}, which only Ansible can run, and ansible-inventory is not installed (not next to "
            f"{sys.executable}, not on PATH); install ansible-core where vllm-fleet runs, or pipe `{command}` "
            "into `vllm-fleet lint --from-json -`."
        )
    env = dict(os.environ, **_ENV)
    try:
        proc = subprocess.run([exe, "-i", path, "--list", "--export"], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise InventoryError(f"{path} is {what}; `{command}` did not finish in {TIMEOUT_S} s; check that it "
                             "can reach what it lists, or export its JSON yourself and pass it with --from-json.") from None
    except OSError as exc:
        raise InventoryError(f"{path} is {what}, but {exe} cannot be run ({exc.strerror}); reinstall ansible-core.") from None
    if proc.returncode != 0:
        raise InventoryError(f"{path} is {what}, and `{command}` failed: {_reason(proc.stderr)}; "
                             "run that command to see all of its output.")
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise InventoryError(f"{path} is {what}, and `{command}` did not print JSON; run it to see what it prints.") from None
    if not isinstance(data, dict):
        raise InventoryError(f"{path} is {what}, and `{command}` printed JSON that is not an inventory object.")
    return data


def _reason(stderr: str) -> str:
    """The line of ansible-inventory's output that says what went wrong, without its decoration."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for prefix in ("ERROR!", "[ERROR]:", "[WARNING]:"):
        for line in lines:
            if line.startswith(prefix):
                return line[len(prefix):].strip().rstrip(".")
    return lines[-1].rstrip(".") if lines else "no error message"
