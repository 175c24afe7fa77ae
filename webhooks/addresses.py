"""Which receivers FlowHQ may call: checked when a URL is saved and again before every request.

The request then goes to the very address that was checked (the connection is pinned to it), so a
name that resolves to a public address at the check and to 127.0.0.1 a moment later (DNS rebinding)
still cannot reach an internal service. WEBHOOK_ALLOW_PRIVATE (dev, tests) lifts the address rule.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from flowhq.errors import ValidationFailed


class ReceiverRefused(ValidationFailed):
    code = "webhook_url_refused"


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked IP the connection goes to


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global)


def _refuse(url: str, why: str) -> ReceiverRefused:
    return ReceiverRefused(f"The webhook URL is refused: {why}.", details={"url": [why]})


def resolve(url: str) -> Target:
    """The URL's parts and an address it may be called on; ReceiverRefused (a 400) if none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse(url, "it is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(url, "it must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise _refuse(url, "it may not carry a user name or password")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise _refuse(url, f"the host {parts.hostname} does not resolve") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    allowed = addresses if settings.WEBHOOK_ALLOW_PRIVATE else [ip for ip in addresses if not _forbidden(ip)]
    # Every address must pass: a name with one public and one private address is refused as a whole.
    if not allowed or len(allowed) != len(addresses):
        raise _refuse(url, f"{parts.hostname} resolves to a private, loopback, link-local or reserved address")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, str(allowed[0]))
