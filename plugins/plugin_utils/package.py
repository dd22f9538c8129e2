"""The vllm-fleet Python package, as the collection's controller-side plugins import it.

The plugins hand the inventory to the package's own code (profiles, rules, manifests) instead of
copying it, so the package must be importable by the Python that runs ansible-playbook, at the
collection's own version. When it is not, the error says which Python and what to install.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path

import yaml
from ansible.errors import AnsibleError

REQUIREMENT = "vllm-fleet"
COLLECTION_ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def collection_version() -> str | None:
    """This collection's version: MANIFEST.json once installed, galaxy.yml in a checkout."""
    manifest = COLLECTION_ROOT / "MANIFEST.json"
    if manifest.is_file():
        return json.loads(manifest.read_text())["collection_info"]["version"]
    galaxy = COLLECTION_ROOT / "galaxy.yml"
    if galaxy.is_file():
        return str(yaml.safe_load(galaxy.read_text())["version"])
    return None


def _install_hint(version: str | None) -> str:
    pin = f"=={version}" if version else ""
    return (f"`{sys.executable} -m pip install '{REQUIREMENT}{pin}'` (with pipx: `pipx inject ansible-core "
            f"'{REQUIREMENT}{pin}'`; AWX/AAP: build the execution environment from execution-environment.yml)")


@lru_cache(maxsize=1)
def vllm_fleet():
    """The imported vllm_fleet package; AnsibleError naming the fix when it is missing or another version."""
    wanted = collection_version()
    try:
        import vllm_fleet
    except ImportError as exc:
        raise AnsibleError(
            f"The vllm_fleet.fleet collection needs the vllm-fleet Python package in the Python that runs "
            f"ansible-playbook ({sys.executable}), and it is not importable there ({exc}). Install it: "
            f"{_install_hint(wanted)}.") from None
    if wanted and vllm_fleet.__version__ != wanted:
        raise AnsibleError(
            f"The vllm_fleet.fleet collection is version {wanted} but the vllm-fleet package in {sys.executable} "
            f"is {vllm_fleet.__version__} ({Path(vllm_fleet.__file__).parent}); the two decide the same rules and "
            f"must match. Install the matching package: {_install_hint(wanted)}.")
    return vllm_fleet
