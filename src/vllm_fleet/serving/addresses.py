"""Where an instance is published and where a client on the host itself reaches it.

An instance bound to loopback is published there directly. Any other bind address is served
by the authenticating proxy (TLS, the API key, an allow-list of paths) on the instance's port,
and vLLM itself is published on loopback at that port plus PROXY_BACKEND_OFFSET: vLLM's own
--api-key guards only some paths (vllm issue #58144). The smoke suite, the watchdog and the
role's health waits run on the host and read these addresses from the instance manifest, so
`::` and `0.0.0.0` mean one thing everywhere.
"""

from __future__ import annotations

import ipaddress

LOOPBACK_V4 = "127.0.0.1"
LOOPBACK_V6 = "::1"
# The container's own port: every instance listens on it inside its container.
CONTAINER_PORT = 8000
# Where vLLM is published (on loopback) behind the proxy: the instance's port plus this.
PROXY_BACKEND_OFFSET = 10000
HIGHEST_PORT = 65535


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def is_loopback(address: str) -> bool:
    # An IP literal (the schema's rule: docker publishes on addresses, not names).
    ip = _ip(address)
    return bool(ip and ip.is_loopback)


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def publish_host(bind_address: str) -> str:
    """The host part of `docker run --publish HOST:PORT:8000` (IPv6 in brackets)."""
    return _bracket(bind_address)


def probe_host(bind_address: str) -> str:
    """The address a client on the host itself uses: the wildcard binds answer on loopback."""
    ip = _ip(bind_address)
    if ip and ip.is_unspecified and ip.version == 4:
        return LOOPBACK_V4
    if ip and ip.is_unspecified:
        return _bracket(LOOPBACK_V6)
    return _bracket(bind_address)


def probe_url(bind_address: str, port: int, scheme: str = "http") -> str:
    return f"{scheme}://{probe_host(bind_address)}:{int(port)}"


def proxied(bind_address: str) -> bool:
    """Whether instances on this bind address are served through the authenticating proxy."""
    return not is_loopback(bind_address)


def backend_port(port: int) -> int:
    return int(port) + PROXY_BACKEND_OFFSET
