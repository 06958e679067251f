"""A delivery resolves its host once, checks every address, and connects only to those
(webhooks/transport.py): a name that answers differently the second time (DNS rebinding)
cannot steer the request elsewhere, and TLS is still verified against the host name.

Real sockets throughout: receivers on 127.0.0.2 and 127.0.0.3 (all of 127/8 is loopback on
Linux) stand in for "the address that was checked", a bare listening socket on 127.0.0.1 for
"the address the name moved to"; only the resolver is scripted."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from webhooks.addresses import AddressRefused, url_target
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.services.delivery import deliveries_claim, delivery_attempt, new_lease_owner
from webhooks.transport import PinnedTransport

from .conftest import create_account, create_endpoint
from .receiver import free_port
from .test_addresses import Resolver

pytestmark = pytest.mark.django_db

HOST = "hooks.zentra.test"


class Listener:
    """A socket that listens and never answers: the kernel completes any TCP handshake into the
    backlog, so `connections()` counts every connection anyone opened to it."""

    def __init__(self, host: str, port: int):
        self.sock = socket.socket()
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.sock.setblocking(False)

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listeners():
    opened: list[Listener] = []

    def listen(host: str, port: int) -> Listener:
        opened.append(Listener(host, port))
        return opened[-1]

    yield listen
    for listener in opened:
        listener.close()


def deliver_once(tenant, url: str, resolve: Resolver) -> DeliveryAttempt:
    """An endpoint for `url`, one event for it, and one attempt resolving through `resolve`."""
    create_endpoint(tenant, url, event_types=["account.created"])
    create_account(tenant)
    owner = new_lease_owner()
    [delivery_id] = deliveries_claim(owner=owner)
    attempt = delivery_attempt(delivery_id=delivery_id, owner=owner, resolve=resolve)
    assert attempt is not None
    return attempt


# --- plain http --------------------------------------------------------------------------------------

def test_the_request_goes_to_the_address_resolved_once_not_to_a_later_answer(tenant_a, receivers, listeners):
    # given: the name answers 127.0.0.2 first and 127.0.0.1 afterwards; both listen on one port
    checked = receivers(host="127.0.0.2")
    moved_to = listeners("127.0.0.1", checked.port)
    resolve = Resolver(["127.0.0.2"], ["127.0.0.1"])
    # when
    attempt = deliver_once(tenant_a, f"http://{HOST}:{checked.port}/hooks", resolve)
    # then: one resolution, the request at the first answer, addressed to the name
    assert resolve.calls == [(HOST, checked.port)]
    assert attempt.status_code == 200 and attempt.error == ""
    [message] = checked.received
    assert message["headers"]["host"] == f"{HOST}:{checked.port}" and message["path"] == "/hooks"
    assert moved_to.connections() == 0


def test_a_name_moved_to_loopback_after_the_check_fails_the_attempt_without_connecting(
        tenant_a, listeners, settings):
    # given: an endpoint accepted earlier (its name was public then), now answering loopback
    settings.ZENTRA_WEBHOOK_RETRY_SCHEDULE = [300]
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = True
    port = free_port()
    loopback = listeners("127.0.0.1", port)
    create_endpoint(tenant_a, f"http://{HOST}:{port}/hooks", event_types=["account.created"])
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = False
    create_account(tenant_a)
    resolve = Resolver(["127.0.0.1"], ["93.184.215.14"])
    # when
    owner = new_lease_owner()
    [delivery_id] = deliveries_claim(owner=owner)
    attempt = delivery_attempt(delivery_id=delivery_id, owner=owner, resolve=resolve)
    # then: a failed attempt saying why, retried later, and no connection at all
    assert attempt is not None and attempt.status_code == 0
    assert attempt.error == f"address refused: host {HOST} resolves to 127.0.0.1, a loopback address"
    assert attempt.next_attempt_at is not None
    assert Delivery.objects.get(pk=delivery_id).status == Delivery.PENDING
    assert resolve.calls == [(HOST, port)]
    assert loopback.connections() == 0


@pytest.mark.parametrize("answer", [
    pytest.param(["93.184.215.14", "127.0.0.1"], id="public-then-loopback"),
    pytest.param(["93.184.215.14", "2002:7f00:1::1"], id="public-then-6to4-loopback"),
    pytest.param(["100.100.100.200"], id="cgnat-metadata"),
])
def test_one_refused_address_in_the_answer_refuses_the_whole_delivery(
        tenant_a, listeners, settings, answer):
    # given
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = True
    port = free_port()
    loopback = listeners("127.0.0.1", port)
    create_endpoint(tenant_a, f"http://{HOST}:{port}/hooks", event_types=["account.created"])
    settings.ZENTRA_WEBHOOK_ALLOW_PRIVATE = False
    create_account(tenant_a)
    owner = new_lease_owner()
    [delivery_id] = deliveries_claim(owner=owner)
    # when
    attempt = delivery_attempt(delivery_id=delivery_id, owner=owner, resolve=Resolver(answer))
    # then: not even the public address was tried
    assert attempt is not None and attempt.status_code == 0
    assert attempt.error.startswith(f"address refused: host {HOST} resolves to {answer[-1]}, a ")
    assert loopback.connections() == 0


def test_when_the_first_checked_address_refuses_the_next_checked_one_is_tried(tenant_a, receivers, listeners):
    # given: nothing listens on 127.0.0.3 at that port; a receiver does on 127.0.0.2
    receiver = receivers(host="127.0.0.2")
    loopback = listeners("127.0.0.1", receiver.port)
    resolve = Resolver(["127.0.0.3", "127.0.0.2"])
    # when
    attempt = deliver_once(tenant_a, f"http://{HOST}:{receiver.port}/hooks", resolve)
    # then
    assert attempt.status_code == 200 and len(receiver.received) == 1
    assert loopback.connections() == 0


def test_the_transport_sends_nothing_to_a_host_it_did_not_check(receivers, listeners):
    # given: a transport pinned to the checked addresses of one name
    receiver = receivers(host="127.0.0.2")
    elsewhere = listeners("127.0.0.1", receiver.port)
    target = url_target(f"http://{HOST}:{receiver.port}/hooks", resolve=Resolver(["127.0.0.2"]))
    # when/then: another host (a redirect, a URL parsed differently) is refused before connecting
    with httpx.Client(transport=PinnedTransport(target)) as client:
        with pytest.raises(AddressRefused, match="not the checked"):
            client.post(f"http://127.0.0.1:{receiver.port}/hooks", content=b"{}")
        with pytest.raises(AddressRefused, match="not the checked"):
            client.post(f"https://{HOST}:{receiver.port}/hooks", content=b"{}")
    assert receiver.received == [] and elsewhere.connections() == 0


# --- https: SNI and the certificate use the name, the socket uses the checked address --------------

@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, Path]:
    """A throwaway CA and two server certificates signed by it, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Zentra test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    paths = {"ca": folder / "ca.pem"}
    for name in (HOST, "other.zentra.test"):
        (folder / f"{name}.ext").write_text(
            f"subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
        paths[name] = folder / name
    return paths


def server_context(certificates: dict[str, Path], name: str, sni_seen: list) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{certificates[name]}.pem", f"{certificates[name]}.key")
    context.sni_callback = lambda sslobj, server_name, ctx: sni_seen.append(server_name)
    return context


def test_https_verifies_the_certificate_of_the_name_while_connecting_to_the_checked_address(
        tenant_a, receivers, certificates, monkeypatch):
    # given: a receiver on 127.0.0.2 holding a certificate for the name only (no IP in it),
    # signed by a CA the deliverer trusts (SSL_CERT_FILE, as in any deployment with its own CA)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["ca"]))
    sni_seen: list[str] = []
    receiver = receivers(host="127.0.0.2", tls=server_context(certificates, HOST, sni_seen))
    resolve = Resolver(["127.0.0.2"], ["127.0.0.1"])
    # when
    attempt = deliver_once(tenant_a, f"https://{HOST}:{receiver.port}/hooks", resolve)
    # then: the handshake named the host, its certificate verified, the request went through
    assert attempt.status_code == 200 and attempt.error == "", attempt.error
    assert sni_seen == [HOST]
    assert receiver.received[0]["headers"]["host"] == f"{HOST}:{receiver.port}"
    assert resolve.calls == [(HOST, receiver.port)]


def test_https_refuses_a_certificate_for_another_name(tenant_a, receivers, certificates, monkeypatch):
    # given: the checked address answers with a valid certificate, but for another name
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["ca"]))
    sni_seen: list[str] = []
    receiver = receivers(host="127.0.0.2", tls=server_context(certificates, "other.zentra.test", sni_seen))
    # when
    attempt = deliver_once(tenant_a, f"https://{HOST}:{receiver.port}/hooks", Resolver(["127.0.0.2"]))
    # then: nothing was sent over it
    assert attempt.status_code == 0 and "certificate" in attempt.error.lower(), attempt.error
    assert sni_seen == [HOST] and receiver.received == []
