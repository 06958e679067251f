"""Where a webhook may go (webhooks/addresses.py): the address policy, including IPv4 hidden in
IPv6 transition addresses, and the same refusal in the API and the admin, writing nothing."""

from __future__ import annotations

import ipaddress

import pytest
from django.urls import reverse

from audit.models import RequestRecord
from webhooks.addresses import AddressRefused, address_refusal, check_url, url_target
from webhooks.models import Event, WebhookEndpoint


def teredo(client: str, server: str = "65.54.227.120") -> str:
    """A Teredo address (2001::/32): the server's IPv4, flags and port, then the client's IPv4
    with every bit inverted."""
    value = (0x2001_0000 << 96 | int(ipaddress.IPv4Address(server)) << 64 | 0x8000_63BF << 32
             | (~int(ipaddress.IPv4Address(client)) & 0xFFFF_FFFF))
    return str(ipaddress.IPv6Address(value))


class Resolver:
    """Answers a name with scripted addresses, one answer per call, and counts the calls."""

    def __init__(self, *answers: list[str]):
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


# --- the policy ----------------------------------------------------------------------------------

REFUSED = [
    pytest.param("100.100.100.200", "carrier-grade NAT", id="cgnat-metadata"),
    pytest.param("100.64.0.0", "carrier-grade NAT", id="cgnat-first"),
    pytest.param("100.127.255.255", "carrier-grade NAT", id="cgnat-last"),
    pytest.param("10.0.0.1", "private", id="private-10"),
    pytest.param("172.16.5.4", "private", id="private-172"),
    pytest.param("192.168.1.1", "private", id="private-192"),
    pytest.param("127.0.0.1", "loopback", id="loopback"),
    pytest.param("127.0.0.2", "loopback", id="loopback-other"),
    pytest.param("169.254.169.254", "link-local", id="link-local-metadata"),
    pytest.param("0.0.0.0", "this network", id="this-network"),
    pytest.param("198.18.0.1", "benchmarking", id="benchmarking"),
    pytest.param("192.0.2.2", "documentation", id="documentation-v4"),
    pytest.param("224.0.0.1", "multicast", id="multicast-v4"),
    pytest.param("255.255.255.255", "reserved", id="broadcast"),
    pytest.param("::1", "loopback", id="loopback-v6"),
    pytest.param("::", "unspecified", id="unspecified-v6"),
    pytest.param("fe80::1", "link-local", id="link-local-v6"),
    pytest.param("fd00::2", "unique local", id="unique-local"),
    pytest.param("ff02::1", "multicast", id="multicast-v6"),
    pytest.param("2001:db8::1", "documentation", id="documentation-v6"),
    pytest.param("::127.0.0.1", "reserved", id="ipv4-compatible"),
    pytest.param("::ffff:127.0.0.1", "IPv4-mapped address embedding 127.0.0.1, a loopback", id="mapped-loopback"),
    pytest.param("::ffff:100.100.100.200", "IPv4-mapped address embedding 100.100.100.200, a carrier-grade NAT",
                 id="mapped-cgnat"),
    pytest.param("2002:a00:1::1", "6to4 address embedding 10.0.0.1, a private", id="6to4-private"),
    pytest.param("2002:7f00:1::1", "6to4 address embedding 127.0.0.1, a loopback", id="6to4-loopback"),
    pytest.param("2002:6464:64c8::1", "6to4 address embedding 100.100.100.200, a carrier-grade NAT", id="6to4-cgnat"),
    pytest.param("2002:a9fe:a9fe::", "6to4 address embedding 169.254.169.254, a link-local", id="6to4-metadata"),
    pytest.param(teredo("10.0.0.1"), "Teredo address embedding 10.0.0.1, a private", id="teredo-private"),
    pytest.param(teredo("127.0.0.1"), "Teredo address embedding 127.0.0.1, a loopback", id="teredo-loopback"),
    pytest.param(teredo("100.100.100.200"), "Teredo address embedding 100.100.100.200, a carrier-grade NAT",
                 id="teredo-cgnat"),
    pytest.param("64:ff9b::a00:1", "NAT64 address embedding 10.0.0.1, a private", id="nat64-private"),
    pytest.param("64:ff9b::6464:64c8", "NAT64 address embedding 100.100.100.200, a carrier-grade NAT",
                 id="nat64-cgnat"),
    pytest.param("64:ff9b::a9fe:a9fe", "NAT64 address embedding 169.254.169.254, a link-local", id="nat64-metadata"),
    pytest.param("64:ff9b:1::a00:1", "local-use NAT64", id="nat64-local-use-private"),
    pytest.param("64:ff9b:1::808:808", "local-use NAT64", id="nat64-local-use-public"),
]

ACCEPTED = [
    pytest.param("8.8.8.8", id="public-v4"),
    pytest.param("100.63.255.255", id="below-cgnat"),
    pytest.param("100.128.0.0", id="above-cgnat"),
    pytest.param("93.184.215.14", id="public-v4-other"),
    pytest.param("2606:4700:4700::1111", id="public-v6"),
    pytest.param("::ffff:8.8.8.8", id="mapped-public"),
    pytest.param("2002:808:808::1", id="6to4-public"),
    pytest.param(teredo("8.8.8.8"), id="teredo-public"),
    pytest.param("64:ff9b::808:808", id="nat64-public"),
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_an_address_inside_a_private_network_is_refused_with_its_reason(address, reason):
    refusal = address_refusal(ipaddress.ip_address(address))
    assert refusal is not None and reason in refusal, refusal


@pytest.mark.parametrize("address", ACCEPTED)
def test_a_public_address_is_accepted_even_inside_a_transition_prefix(address):
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_the_teredo_helper_builds_what_the_standard_library_reads():
    # given/when/then: the helper the cases above rely on agrees with ipaddress's own reading
    assert ipaddress.IPv6Address(teredo("10.0.0.1")).teredo == (ipaddress.IPv4Address("65.54.227.120"),
                                                                 ipaddress.IPv4Address("10.0.0.1"))


# --- resolving a name: once, every answer checked ---------------------------------------------------

def test_a_name_is_refused_when_any_of_its_addresses_is(settings):
    # given: a name that answers a public address and a metadata address
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = False
    resolve = Resolver(["93.184.215.14", "100.100.100.200"])
    # when/then
    with pytest.raises(AddressRefused, match=r"hooks\.example\.com resolves to 100\.100\.100\.200, a carrier-grade"):
        check_url("https://hooks.example.com/in", resolve=resolve)
    assert resolve.calls == [("hooks.example.com", 443)]


def test_a_checked_target_keeps_every_address_the_name_resolved_to(settings):
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = False
    resolve = Resolver(["93.184.215.14", "2606:4700:4700::1111", "93.184.215.14"])
    target = url_target("http://Hooks.Example.com:8080/in", resolve=resolve)
    assert (target.scheme, target.host, target.port) == ("http", "hooks.example.com", 8080)
    assert target.addresses == ("93.184.215.14", "2606:4700:4700::1111")
    assert resolve.calls == [("hooks.example.com", 8080)]


def test_a_name_that_does_not_resolve_is_refused(settings):
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = False

    def nowhere(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(AddressRefused, match="does not resolve"):
        check_url("https://hooks.example.com/in", resolve=nowhere)
    with pytest.raises(AddressRefused, match="does not resolve"):
        check_url("https://hooks.example.com/in", resolve=Resolver([]))


def test_allowing_private_addresses_checks_the_url_without_resolving_it(settings):
    # given: the local demo setting, and a name that would resolve to loopback
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = True
    resolve = Resolver(["127.0.0.1"])
    # when/then: accepted, and the name was not even asked (it may not exist yet)
    check_url("http://receiver.local:9000/hooks", resolve=resolve)
    assert resolve.calls == []
    # and a delivery still resolves it once, keeping the private address
    assert url_target("http://receiver.local:9000/hooks", resolve=resolve).addresses == ("127.0.0.1",)
    # the shape rules stay
    with pytest.raises(AddressRefused, match="http or https"):
        check_url("gopher://receiver.local/hooks", resolve=resolve)


# --- the API and the admin give the same answer ---------------------------------------------------

REFUSED_URLS = [
    pytest.param("http://100.100.100.200/latest/meta-data", "100.100.100.200, a carrier-grade NAT", id="cgnat"),
    pytest.param("https://[2002:a00:1::1]/hooks", "2002:a00:1::1, a 6to4 address embedding 10.0.0.1", id="6to4"),
    pytest.param(f"https://[{teredo('127.0.0.1')}]/hooks", "a Teredo address embedding 127.0.0.1", id="teredo"),
    pytest.param("http://[64:ff9b::a9fe:a9fe]/hooks", "a NAT64 address embedding 169.254.169.254", id="nat64"),
    pytest.param("http://[::ffff:100.100.100.200]/hooks", "embedding 100.100.100.200, a carrier-grade NAT",
                 id="mapped"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "says"), REFUSED_URLS)
def test_the_api_refuses_these_addresses_with_a_problem_and_writes_nothing(tenant_a, settings, url, says):
    # given: production settings
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = False
    events_before = Event.objects.count()
    # when
    response = tenant_a.post("/v1/webhook_endpoints", {"url": url, "event_types": ["hold.*"]})
    # then: a 400 problem naming the address and why, and nothing written
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_error" and problem["detail"].startswith("url: ")
    [error] = problem["errors"]
    assert error["field"] == "url" and says in error["message"], error
    assert not WebhookEndpoint.objects.exists() and not WebhookEndpoint.history.exists()
    assert Event.objects.count() == events_before
    # the refusal is on record
    assert RequestRecord.objects.filter(path="/v1/webhook_endpoints", method="POST", status=400).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "says"), REFUSED_URLS)
def test_the_admin_refuses_them_with_the_api_message_and_writes_nothing(client, tenant_a, settings, url, says):
    # given
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = False
    client.force_login(tenant_a.member("owner"))
    # when
    response = client.post(reverse("admin:webhooks_webhookendpoint_add"), {
        "tenant": tenant_a.tenant.pk, "url": url, "event_types_text": "hold.*"})
    api = tenant_a.post("/v1/webhook_endpoints", {"url": url, "event_types": ["hold.*"]})
    # then: the form shows the service's message on the url field, word for word the API's
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["url"] == [api.json()["errors"][0]["message"]]
    assert says in errors["url"][0]
    assert not WebhookEndpoint.objects.exists() and not WebhookEndpoint.history.exists()
