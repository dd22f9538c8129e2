"""The image reference an instance runs: `<repository>@<digest>`, never a tag (a tag can move,
a digest cannot), with the registry swapped for a site's mirror when one is set."""

from __future__ import annotations

from typing import Any


def _split_registry(repository: str) -> tuple[str | None, str]:
    # Docker's rule: the first path component is a registry when it has a dot or a port, or is
    # localhost; otherwise the image lives on Docker Hub and the whole string is its path.
    first, sep, rest = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, repository


def image_ref(image: dict[str, Any], registry_mirror: str = "") -> str:
    repository = str(image.get("repository") or "")
    if registry_mirror:
        repository = f"{registry_mirror.rstrip('/')}/{_split_registry(repository)[1]}"
    return f"{repository}@{image.get('digest') or ''}"
