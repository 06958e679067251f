"""Where a webhook may go: http(s) only, and never into a private network (loopback, private,
link-local, carrier-grade NAT, ...), whether the address says so plainly or hides an IPv4 inside
an IPv6 transition address (IPv4-mapped, 6to4, Teredo, NAT64), unless
ZENTRA_WEBHOOK_ALLOW_PRIVATE=1 (local demos and tests).

Checked when an endpoint is created, and again at every delivery, since a name can be pointed
somewhere else later. A delivery resolves the name once (`url_target`), checks every address it
got, and connects only to those (webhooks/transport.py): resolving again to connect would leave
a window in which the name answers something else (DNS rebinding).

The refused ranges are written out here rather than taken from `ipaddress`'s is_private and
is_global, whose lists change between Python releases (and miss 100.64.0.0/10 in is_private).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to, as text; tests pass one that answers what they script.
Resolver = Callable[[str, int], Iterable[str]]


class AddressRefused(Exception):
    pass


def _table(*rows: tuple[str, str]) -> list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]:
    return [(ipaddress.ip_network(network), why) for network, why in rows]


# IANA's special-purpose registries, the blocks not reachable on the internet, and multicast.
_REFUSED_V4 = _table(
    ("0.0.0.0/8", "a 'this network' address"),
    ("10.0.0.0/8", "a private address"),
    # Shared address space (RFC 6598): inside a carrier's or a cloud's network, where metadata
    # services also answer (100.100.100.200).
    ("100.64.0.0/10", "a carrier-grade NAT address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol assignment address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
)
_REFUSED_V6 = _table(
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("100::/64", "a discard-only address"),
    ("2001:db8::/32", "a documentation address"),
    # Teredo (2001::/32) is read for its IPv4 first; the rest of the block holds protocol
    # assignments (benchmarking, ORCHID, AMT, ...), none of them a webhook receiver.
    ("2001::/23", "an IETF protocol assignment address"),
    ("fc00::/7", "a unique local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
)
# Everything else outside global unicast is reserved, the deprecated IPv4-compatible ::a.b.c.d
# (which some stacks still route to the IPv4 address) among it.
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 8215's local-use prefix: each network chooses where in the /48 it puts the IPv4 (RFC 6052
# allows six layouts), so no single reading finds it; the prefix only ever leads into a local
# translator, and is refused whole.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 transition address finally reaches, and the kind of wrapping."""
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped", address.ipv4_mapped
    if address in _NAT64:
        return "a NAT64", ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address.sixtofour is not None:
        return "a 6to4", address.sixtofour
    if address.teredo is not None:
        return "a Teredo", address.teredo[1]  # the client; its bits are stored inverted
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why a webhook must not go to this address ("a loopback address"), or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return "a local-use NAT64 address (64:ff9b:1::/48), which leads into a private network"
        wrapped = _embedded_ipv4(address)
        if wrapped is not None:
            # Judged by where the packets end up: a wrapped public address stays deliverable
            # (an IPv6-only host behind DNS64 sees every public name as 64:ff9b::a.b.c.d).
            kind, inner = wrapped
            why = address_refusal(inner)
            return f"{kind} address embedding {inner}, {why}" if why else None
        table = _REFUSED_V6
    else:
        table = _REFUSED_V4
    for network, why in table:
        if address in network:
            return why
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
        return "a reserved address"
    return None


@dataclass(frozen=True)
class Target:
    """A URL's host resolved once: where a delivery may connect, and the name TLS verifies."""

    scheme: str
    host: str  # as it goes on the wire (lower case, IDNA-encoded; an IPv6 literal without brackets)
    port: int
    addresses: tuple[str, ...]  # every address the name resolved to, each one checked


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _checked_parts(url: str) -> tuple[str, str, int]:
    """The scheme, wire host and port of a URL whose shape is acceptable."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("URL must use http or https")
    if not parts.hostname:
        raise AddressRefused("URL has no host")
    if parts.username or parts.password:
        raise AddressRefused("URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise AddressRefused("URL has an invalid port") from exc
    try:
        # The host exactly as httpx will send it (Host header, SNI): the name that is resolved
        # and checked is the one the request names, whatever urlsplit made of the URL.
        host = httpx.URL(url).raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise AddressRefused(f"URL is not valid: {exc}") from exc
    return parts.scheme, host, port


def url_target(url: str, *, resolve: Resolver = system_resolve) -> Target:
    """Resolve the URL's host once and check every address (unless private ones are allowed)."""
    scheme, host, port = _checked_parts(url)
    try:
        answers = list(resolve(host, port))
    except (OSError, UnicodeError) as exc:
        raise AddressRefused(f"host {host} does not resolve") from exc
    addresses: list[str] = []
    for answer in answers:
        try:
            # A scope (fe80::1%eth0) only comes with link-local addresses: refused, and no local
            # demo (private addresses allowed) needs one.
            address = ipaddress.ip_address(answer.split("%", 1)[0])
        except ValueError as exc:
            raise AddressRefused(f"host {host} resolves to {answer!r}, not an IP address") from exc
        why = None if settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE else address_refusal(address)
        if why:
            raise AddressRefused(f"host {host} resolves to {address}, {why}")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise AddressRefused(f"host {host} does not resolve")
    return Target(scheme=scheme, host=host, port=port, addresses=tuple(addresses))


def check_url(url: str, *, resolve: Resolver = system_resolve) -> None:
    """Whether an endpoint may be created with this URL. With private addresses allowed only the
    shape is checked: a local receiver's name may not resolve yet, and nothing would be refused."""
    _checked_parts(url)
    if not settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE:
        url_target(url, resolve=resolve)
