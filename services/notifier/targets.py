"""Where a webhook may go: URL rules at registration, and the address check at connect time
(every address a host resolves to must be public, or nothing is sent)."""

import ipaddress
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
CGNAT = ipaddress.ip_network("100.64.0.0/10")


class TargetRefused(ValueError):
    """The URL or an address it resolves to is not one a webhook may be sent to."""


def check_url(url: str, *, https_only: bool) -> tuple[str, int]:
    """(host, port) of a URL a webhook may be registered for; TargetRefused says why not."""
    if len(url) > 2000:
        raise TargetRefused("the URL is longer than 2000 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("the URL must start with https:// (or http:// outside production)")
    if https_only and parts.scheme != "https":
        raise TargetRefused("the URL must use https in production")
    if parts.username or parts.password:
        raise TargetRefused("the URL must not carry credentials")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.fragment:
        raise TargetRefused("the URL must not have a fragment")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("the URL's port is not a number from 1 to 65535") from None
    return parts.hostname, port


def refused_reason(address: IPAddress) -> str | None:
    """Why a webhook must not go to `address` (loopback, private, ...), or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return "a cloud metadata address"
    for name, test in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if test:
            return f"a {name} address"
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "a carrier-grade NAT address"
    if not address.is_global:
        return "not a public address"
    return None


def vet(addresses: list[str], *, allow_private: bool) -> IPAddress:
    """The address to connect to, if every resolved one may be used; TargetRefused otherwise."""
    if not addresses:
        raise TargetRefused("the host does not resolve")
    parsed = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
    if not allow_private:
        for address in parsed:
            if reason := refused_reason(address):
                raise TargetRefused(f"the host resolves to {address}, {reason}")
    return parsed[0]
