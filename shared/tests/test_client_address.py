"""Which address the lockout counts: forwarding headers believed only from configured proxies."""

import pytest
from starlette.requests import Request

from shared.http import client_address

PROXIES = ("127.0.0.1", "10.0.0.0/8")


def request(peer: str, **headers: str) -> Request:
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "client": (peer, 1234), "headers": raw, "method": "POST", "path": "/"})


@pytest.mark.parametrize(
    "peer, headers, seen",
    [
        ("203.0.113.9", {"x_real_ip": "1.2.3.4", "x_forwarded_for": "5.6.7.8"}, "203.0.113.9"),  # not a proxy
        ("127.0.0.1", {"x_real_ip": "198.51.100.4"}, "198.51.100.4"),
        ("10.1.2.3", {"x_forwarded_for": "6.6.6.6, 198.51.100.4, 10.0.0.7"}, "198.51.100.4"),  # right-most untrusted
        ("127.0.0.1", {"x_real_ip": "not an address"}, "127.0.0.1"),
        ("127.0.0.1", {"x_forwarded_for": "198.51.100.4, garbage"}, "127.0.0.1"),
        ("127.0.0.1", {}, "127.0.0.1"),
    ],
    ids=["untrusted-peer", "real-ip", "xff-right-most", "bad-real-ip", "bad-hop", "no-headers"],
)
def test_forwarding_headers_are_believed_only_from_trusted_proxies(peer, headers, seen):
    assert client_address(request(peer, **headers), PROXIES) == seen
