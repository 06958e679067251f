"""Where a webhook may go: http(s) only, and never to loopback, private or link-local
addresses unless ZENTRA_WEBHOOK_ALLOW_PRIVATE=1. Checked when an endpoint is created and
again before every delivery, since a name can be pointed somewhere else later."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class AddressRefused(Exception):
    pass


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified)


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("URL must use http or https")
    if not parts.hostname:
        raise AddressRefused("URL has no host")
    if parts.username or parts.password:
        raise AddressRefused("URL must not carry credentials")
    if settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise AddressRefused("URL has an invalid port") from exc
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise AddressRefused(f"host {parts.hostname} does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if _forbidden(address):
            raise AddressRefused(f"host {parts.hostname} resolves to {address}, a loopback, private or "
                                 "link-local address")
