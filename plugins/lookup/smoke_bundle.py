"""Lookup plugin vllm_fleet.fleet.smoke_bundle: the installed vllm_fleet package as one
reproducible tar.gz on the controller, for the smoke role to run the suite on each host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: smoke_bundle
short_description: The vllm-fleet package (with its smoke suite) as one tarball for the hosts
description:
  - Packs the vllm_fleet package installed on the controller (code, catalogue, schemas and the
    smoke suite; no bytecode) into a gzip tarball with fixed dates and owners, so the same
    package always gives the same bytes and a copy to a host changes only when the package did.
  - Returns the tarball's path on the controller.
author:
  - vllm-fleet
"""

import gzip
import hashlib
import io
import tarfile
import tempfile
from pathlib import Path

from ansible.plugins.lookup import LookupBase
from ansible_collections.vllm_fleet.fleet.plugins.plugin_utils.package import vllm_fleet


def _bundle(package_dir: Path, version: str) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(package_dir.rglob("*")):
            if "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo") or not path.is_file():
                continue
            info = tarfile.TarInfo(f"vllm_fleet/{path.relative_to(package_dir).as_posix()}")
            data = path.read_bytes()
            info.size, info.mode, info.mtime, info.uid, info.gid = len(data), 0o644, 0, 0, 0
            tar.addfile(info, io.BytesIO(data))
    target = Path(tempfile.gettempdir()) / f"vllm-fleet-smoke-{version}-{hashlib.sha256(raw.getvalue()).hexdigest()[:16]}.tar.gz"
    if not target.exists():
        with open(target, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
            gz.write(raw.getvalue())
    return target


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        package = vllm_fleet()
        return [str(_bundle(Path(package.__file__).resolve().parent, package.__version__))]
