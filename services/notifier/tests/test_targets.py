"""Webhooks never reach internal addresses: checked on every resolved address at connect time,
and the connection goes to the address that was checked (DNS rebinding cannot swap it)."""

import ipaddress

import pytest

from services.notifier.adapters.sender import WebhookSender
from services.notifier.targets import TargetRefused, check_url, vet
from shared.testing.receiver import Receiver

REFUSED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.10.10",
    "100.64.0.1",
    "224.0.0.1",
    "0.0.0.0",
    "::1",
    "fe80::1",
    "fd00:ec2::254",
    "fc00::1",
    "::ffff:127.0.0.1",
    "::",
    "240.0.0.1",
]


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_are_refused(address):
    with pytest.raises(TargetRefused):
        vet([address], allow_private=False)
    assert vet([address], allow_private=True) == ipaddress.ip_address(address)


def test_public_addresses_are_allowed_but_one_internal_among_them_refuses_all():
    assert str(vet(["93.184.216.34", "2606:4700::1111"], allow_private=False)) == "93.184.216.34"
    with pytest.raises(TargetRefused, match="10.0.0.5"):
        vet(["93.184.216.34", "10.0.0.5"], allow_private=False)
    with pytest.raises(TargetRefused, match="does not resolve"):
        vet([], allow_private=False)


@pytest.mark.parametrize(
    ("url", "https_only", "reason"),
    [
        ("ftp://hooks.example.com/x", False, "https://"),
        ("http://hooks.example.com/x", True, "https in production"),
        ("https://user:pw@hooks.example.com/x", False, "credentials"),
        ("https:///x", False, "no host"),
        ("https://hooks.example.com:99999/x", False, "port"),
    ],
)
def test_urls_that_cannot_be_registered(url, https_only, reason):
    with pytest.raises(TargetRefused, match=reason):
        check_url(url, https_only=https_only)


async def test_a_host_that_rebinds_to_loopback_after_registration_is_refused_at_connect_time(receiver: Receiver):
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    sender = WebhookSender(timeout_s=2, allow_private=False, https_only=False, resolver=rebinding)
    vet(await rebinding("evil.example", 80), allow_private=False)  # what registration saw
    result = await sender.post(f"http://evil.example:{receiver.port}/hooks", {}, b"{}")
    assert result.refused and "127.0.0.1" in (result.error or "")
    assert receiver.received == []
    await sender.close()


async def test_the_connection_goes_to_the_vetted_address_with_the_host_name_in_the_host_header(receiver: Receiver):
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "hooks.example.com" else []

    sender = WebhookSender(timeout_s=2, allow_private=True, https_only=False, resolver=resolver)
    result = await sender.post(f"http://hooks.example.com:{receiver.port}/hooks?a=1", {"x-test": "1"}, b"{}")
    assert result.status_code == 200 and result.response == "ok"
    assert receiver.received[0].headers["Host"] == f"hooks.example.com:{receiver.port}"
    assert receiver.received[0].path == "/hooks"
    await sender.close()


async def test_redirects_are_not_followed_and_answers_are_read_up_to_1_kib(receiver: Receiver):
    sender = WebhookSender(timeout_s=2, allow_private=True, https_only=False)
    receiver.statuses = [302]
    result = await sender.post(receiver.url, {}, b"{}")
    assert result.status_code == 302 and not result.ok
    assert [r.path for r in receiver.received] == ["/hooks"]  # /elsewhere never asked
    receiver.answer = b"x" * 5000
    result = await sender.post(receiver.url, {}, b"{}")
    assert result.ok and len(result.response or "") == 1024
    await sender.close()


async def test_a_slow_endpoint_times_out_and_a_closed_port_is_a_connection_error(receiver: Receiver):
    sender = WebhookSender(timeout_s=0.3, allow_private=True, https_only=False)
    receiver.delay_s = 2
    result = await sender.post(receiver.url, {}, b"{}")
    assert result.status_code is None and result.error.startswith("timeout")
    await receiver.stop()
    result = await sender.post(receiver.url, {}, b"{}")
    assert result.status_code is None and result.error.startswith("connection error")
    await sender.close()


async def test_a_host_name_dns_cannot_hold_does_not_resolve_instead_of_crashing():
    from services.notifier.adapters.sender import system_resolver

    assert await system_resolver("a" * 300 + ".example", 443) == []  # idna: label too long
    assert await system_resolver("a..b", 443) == []  # idna: empty label
    sender = WebhookSender(timeout_s=1, allow_private=False, https_only=False)
    result = await sender.post("http://a..b/hooks", {}, b"{}")
    assert result.refused and "does not resolve" in result.error
    await sender.close()
