"""Verified releases: what a host served when the smoke suite last passed on it, kept so that an
upgrade or a rollback can put exactly that back.

A release is the files every instance starts from (the template unit, the docker run wrapper,
the container entrypoint, and per instance its .args, .env and manifest), never its secrets: a
rollback must not undo a key rotation. The vllm role keeps two of them on each host:

  <config dir>/verified/   the last release that passed smoke there
  <config dir>/previous/   the verified release before it (what playbooks/rollback.yml restores)

each as files/<name> (copies) and one marker per instance, <instance>.json, written last and
only after a passing smoke run: its schema, the manifest's config_sha256, the image (reference,
digest, local id), the sha256 of every file the instance starts from, and when it passed.

The role's tasks gather the facts on the host (one `find` for the checksums, slurp, docker
inspect, the wrapper's fingerprint); the decisions are made here, through the vllm_fleet.fleet
filters, so they can be tested without a host."""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

MARKER_SCHEMA = "vllm-fleet-verified-release/1"
# Docker label the wrapper (vllm-run) puts on each container: a fingerprint of its files.
FILES_LABEL = "io.vllm-fleet.files"
INSTANCE_FILES = (("args", "0640"), ("env", "0600"), ("json", "0640"))


class ReleaseError(ValueError):
    pass


def release_files(names: Iterable[str], *, unit: str, wrapper: str, entrypoint: str,
                  config_dir: str) -> list[dict[str, Any]]:
    """The files of a release of instances `names`: name (in the kept files/ directory), path on
    the host, mode, and the instance it belongs to (None for the three every instance shares)."""
    files: list[dict[str, Any]] = [
        {"name": posixpath.basename(unit), "path": unit, "mode": "0644", "instance": None},
        {"name": posixpath.basename(wrapper), "path": wrapper, "mode": "0755", "instance": None},
        {"name": posixpath.basename(entrypoint), "path": entrypoint, "mode": "0755", "instance": None},
    ]
    for name in names:
        files += [{"name": f"{name}.{ext}", "path": posixpath.join(config_dir, f"{name}.{ext}"), "mode": mode,
                   "instance": name} for ext, mode in INSTANCE_FILES]
    seen: dict[str, str] = {}
    for f in files:
        if f["name"] in seen:
            raise ReleaseError(f"{seen[f['name']]} and {f['path']} have the same file name, {f['name']}: a kept "
                               "release holds one file of each name (give the wrapper, the entrypoint and the unit "
                               "distinct names)")
        seen[f["name"]] = f["path"]
    return files


def release_checksums(found: Mapping[str, Any] | None, files: Iterable[Mapping[str, Any]],
                      directory: str | None = None) -> list[dict[str, Any]]:
    """Each release_files() entry with its sha256 from one `find` result (get_checksum,
    checksum_algorithm sha256): of its copy <directory>/<name> when `directory` is given, else of
    the file at its path on the host; None when find did not list it (missing, or not a regular
    file). One find for all the files: a stat per file cost a module run each, three times a
    release in every run (https://docs.ansible.com/ansible/latest/collections/ansible/builtin/find_module.html)."""
    sums = {str(f.get("path")): f.get("checksum") for f in (found or {}).get("files") or []
            if f.get("isreg", True)}
    return [{"name": f["name"], "instance": f.get("instance"),
             "checksum": sums.get(posixpath.join(directory, f["name"]) if directory else f["path"])}
            for f in files]


def release_marker(instance: str, manifest: Mapping[str, Any], sums: Iterable[Mapping[str, Any]], image_id: str,
                   at: str, by: str = "smoke") -> dict[str, Any]:
    """The marker of `instance`, written after the smoke suite passed on it. `sums`:
    release_checksums() of the copies being kept; those of the instance (its own and the shared
    ones) are recorded."""
    image = manifest.get("image") or {}
    if manifest.get("instance") not in (None, instance):
        raise ReleaseError(f"the manifest given for {instance!r} is {manifest.get('instance')!r}'s")
    if not manifest.get("config_sha256") or not image.get("ref"):
        raise ReleaseError(f"the manifest of {instance!r} has no config_sha256 or image reference: it was not "
                           "written by this collection's vllm role")
    recorded = {name: checksum for name, (checksum, owner) in _checksums(sums).items() if owner in (None, instance)}
    missing = sorted(n for n, c in recorded.items() if not c)
    if missing or not recorded:
        raise ReleaseError(f"no checksum of {', '.join(missing) or 'any file'}: {instance!r} cannot be marked verified")
    return {
        "schema": MARKER_SCHEMA,
        "instance": instance,
        "config_sha256": manifest["config_sha256"],
        "model": (manifest.get("model") or {}).get("served_name"),
        "image": {"ref": image["ref"], "digest": image.get("digest"), "id": image_id or None},
        "files": dict(sorted(recorded.items())),
        "verified_at": at,
        "verified_by": by,
    }


# --- reading what the role gathered on the host ---------------------------------------------

def _item_name(result: Mapping[str, Any]) -> str:
    item = result.get("item")
    if isinstance(item, Mapping):
        return str(item.get("name", ""))
    return str(item)


def _markers(slurped: Iterable[Mapping[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Markers by instance from a slurp loop (item: the instance name); problems with the rest."""
    markers: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for r in slurped or []:
        name = _item_name(r)
        if r.get("failed") or r.get("skipped") or "content" not in r:
            problems.append(f"{name}: no marker")
            continue
        try:
            marker = json.loads(base64.b64decode(r["content"]).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            problems.append(f"{name}: the marker is not JSON")
            continue
        if not isinstance(marker, dict) or marker.get("schema") != MARKER_SCHEMA or marker.get("instance") != name:
            problems.append(f"{name}: not a verified-release marker (kept by an older version, or damaged)")
            continue
        if not isinstance(marker.get("files"), dict) or not (marker.get("image") or {}).get("ref"):
            problems.append(f"{name}: the marker records no files or image")
            continue
        markers[name] = marker
    return markers, problems


def _checksums(sums: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str | None, str | None]]:
    """name -> (sha256 or None when missing, instance or None when shared), from release_checksums()."""
    return {str(s.get("name")): (s.get("checksum") or None, s.get("instance")) for s in sums or []}


def _by_name(results: Iterable[Mapping[str, Any]] | None) -> dict[str, Mapping[str, Any]]:
    return {_item_name(r): r for r in results or []}


def _container(inspected: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not inspected or inspected.get("rc") != 0:
        return None
    try:
        info = json.loads(inspected["stdout"])[0]
    except (ValueError, LookupError, TypeError):
        return None
    return info if isinstance(info, dict) else None


def container_problems(names: Iterable[str], inspected: Iterable[Mapping[str, Any]] | None,
                       fingerprints: Iterable[Mapping[str, Any]] | None,
                       need_reload: Iterable[Mapping[str, Any]] | None) -> list[tuple[str, str]]:
    """(instance, sentence) for each instance that does not run the files on the host: no
    container, a stopped one, one whose fingerprint label is not that of the files (a run killed
    before its restart, or files changed under it), or a unit systemd runs an older definition of."""
    out: list[tuple[str, str]] = []
    inspected_by, prints_by, reload_by = _by_name(inspected), _by_name(fingerprints), _by_name(need_reload)
    for name in names:
        info = _container(inspected_by.get(name))
        fp = prints_by.get(name) or {}
        label = ((info or {}).get("Config") or {}).get("Labels") or {}
        if info is None:
            out.append((name, f"{name}: no container"))
        elif not (info.get("State") or {}).get("Running"):
            out.append((name, f"{name}: its container is not running"))
        elif fp.get("rc") != 0 or label.get(FILES_LABEL) != str(fp.get("stdout", "")).strip():
            out.append((name, f"{name}: its container runs other files than those on the host"))
        if str((reload_by.get(name) or {}).get("stdout", "")).strip() == "yes":
            out.append((name, f"{name}: systemd runs an older definition of its unit"))
    return out


def review_release(names: Iterable[str], slurped_markers: Iterable[Mapping[str, Any]],
                   kept: Iterable[Mapping[str, Any]], current: Iterable[Mapping[str, Any]],
                   inspected: Iterable[Mapping[str, Any]] | None = None,
                   fingerprints: Iterable[Mapping[str, Any]] | None = None,
                   need_reload: Iterable[Mapping[str, Any]] | None = None,
                   found: Iterable[str] | None = None) -> dict[str, Any]:
    """A kept release (markers and files/ copies) against the host.

    names: the instances the release is read for. slurped_markers: slurp of <dir>/<name>.json per
    name. kept / current: release_checksums() of the release_files(names) entries, in files/ and
    on the host. inspected, fingerprints, need_reload: per instance, `docker inspect <container>`,
    `vllm-run --fingerprint <args>` and systemd's NeedDaemonReload of its unit. found: the
    instances that have a marker in the directory (any outside `names` make the host differ).

    Returns:
      problems    why the kept release cannot be restored (incomplete, damaged, or no release)
      files       names of the host's files that differ from it (or are missing)
      containers  sentences: instances that do not run the files on the host
      drifted     those instances' names (the ones a restart would put on the files on disk)
      changes     every difference as a sentence; empty when the host serves exactly this release
      markers     the markers by instance"""
    names = list(names or [])
    markers, problems = _markers(slurped_markers)
    kept_sums, now_sums = _checksums(kept), _checksums(current)
    if not names:
        problems.append("no instance has a marker")
    recorded_all: dict[str, str] = {}
    for name, marker in sorted(markers.items()):
        recorded = marker["files"]
        recorded_all.update(recorded)
        own = sorted(f for f, (_, inst) in kept_sums.items() if inst in (None, name))
        unrecorded = [f for f in own if f not in recorded]
        if unrecorded:
            problems.append(f"{name}: the marker records no checksum of {', '.join(unrecorded)}")
        for fname in own:
            if fname not in recorded:
                continue
            if kept_sums[fname][0] is None:
                problems.append(f"{fname}: missing from the kept files")
            elif kept_sums[fname][0] != recorded[fname]:
                problems.append(f"{fname}: the kept copy is not the file that passed smoke")
    problems = list(dict.fromkeys(problems))  # a shared file is named once, not once per instance

    files = [f for f, (now, _) in now_sums.items() if now is None or now != recorded_all.get(f)]
    changes = [f"{f} {'is missing' if now_sums[f][0] is None else 'differs from the release'}" for f in files]
    extra = sorted(set(found or []) - set(names))
    if extra:
        files.append("instances")
        changes.append(f"the release has instances that are not configured now: {', '.join(extra)}")
    drift = container_problems(names, inspected, fingerprints, need_reload) if inspected is not None else []
    containers = [sentence for _, sentence in drift]
    return {
        "instances": names,
        "markers": markers,
        "problems": problems,
        "files": files,
        "containers": containers,
        "drifted": sorted({name for name, _ in drift}),
        "changes": changes + containers,
    }
