"""The client's address, for login throttling and per-address rate limits.

REMOTE_ADDR is the client unless the connection comes from a proxy we trust (MELANOMA_TRUSTED_PROXIES: a list
of addresses or networks, e.g. "127.0.0.1,10.0.0.0/8"). Only then is X-Forwarded-For read, from the right:
every hop our own proxies appended is skipped, and the first address they did not add is the client. Without
the setting the header is ignored, since anyone can send it: trusting it would let an attacker pick the address
that gets throttled (someone else's), and trusting none behind a proxy would put every client on one address.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)
    except ValueError as error:
        raise ImproperlyConfigured(f"MELANOMA_TRUSTED_PROXIES: {error}") from error


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    address = address.strip()
    if address.startswith("[") and "]" in address:  # "[2001:db8::1]:443"
        address = address[1 : address.index("]")]
    elif address.count(":") == 1:  # "203.0.113.7:51234"
        address = address.split(":", 1)[0]
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    """The address of the client that sent `request`, as far as the trusted proxies vouch for it."""
    meta = getattr(request, "META", {})
    remote = meta.get("REMOTE_ADDR") or ""
    networks = _networks(tuple(getattr(settings, "MELANOMA_TRUSTED_PROXIES", ())))
    current = _parse(remote)
    if not _trusted(current, networks):
        return str(current) if current is not None else remote
    hops = [hop for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break  # a garbled hop: stop at the last proxy we trust rather than believe what lies beyond it
        current = address
        if not _trusted(address, networks):
            break
    return str(current)
