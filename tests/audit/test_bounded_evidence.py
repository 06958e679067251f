"""Evidence stays bounded: refusals of callers who proved no identity are counted on one row per
client address, action (or route) and reason per window, atomically; calls a key admitted keep a
row each. Operators see the counts and find a request by the id its client quoted."""

import json
import logging
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.urls import reverse
from rest_framework.test import APIClient

from audit.logs import JsonFormatter
from audit.models import AccessDenial, RequestRecord
from audit.services.evidence import access_denial_record

pytestmark = pytest.mark.django_db

EVENT = json.dumps({"id": "evt_1", "type": "payment.settled", "intent": "pi_x"})


@pytest.fixture
def roomy(one_evidence_window):
    """Budgets that a flood of 200 calls in a few seconds stays within: what is counted here is
    the evidence, not the limiter (tests/api/test_rate_limits.py)."""
    one_evidence_window.ZENTRA_RATE_LIMIT_PER_SECOND = 10_000
    one_evidence_window.ZENTRA_RATE_LIMIT_PER_MINUTE = 100_000
    return one_evidence_window


def unknown_provider_event(client, provider_id="prv_unknown", **extra):
    return client.post(f"/v1/providers/{provider_id}/events", EVENT, content_type="application/json",
                       HTTP_ZENTRA_PROVIDER_SIGNATURE="t=1,v1=00", **extra)


def test_200_unsigned_provider_events_leave_one_denial_and_one_request_record(roomy):
    # given
    client = APIClient()

    # when
    answers = [unknown_provider_event(client).status_code for _ in range(200)]

    # then
    assert set(answers) == {404}
    denial = AccessDenial.objects.get()
    assert (denial.action, denial.reason, denial.repeat_count, denial.client_address) == (
        "provider event", "unknown provider", 200, "127.0.0.1")
    assert denial.last_seen_at >= denial.created_at
    record = RequestRecord.objects.get()
    assert (record.path, record.status, record.repeat_count) == ("/v1/providers/prv_unknown/events", 404, 200)


def test_varying_the_unknown_id_does_not_buy_a_row_per_call(roomy):
    # when
    for n in range(20):
        unknown_provider_event(APIClient(), provider_id=f"prv_guess{n}")

    # then: the route, not the path, makes two calls the same
    assert list(AccessDenial.objects.values_list("repeat_count", flat=True)) == [20]
    assert list(RequestRecord.objects.values_list("repeat_count", flat=True)) == [20]


def test_each_address_has_rows_of_its_own(roomy):
    # when
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.1"):
        unknown_provider_event(APIClient(), REMOTE_ADDR=address)

    # then
    counts = dict(AccessDenial.objects.values_list("client_address", "repeat_count"))
    assert counts == {"10.0.0.1": 2, "10.0.0.2": 1}


def test_a_new_window_starts_a_new_row(roomy, clock):
    # given
    unknown_provider_event(APIClient())

    # when
    clock.forward(600)
    unknown_provider_event(APIClient())
    unknown_provider_event(APIClient())

    # then
    assert sorted(AccessDenial.objects.values_list("repeat_count", flat=True)) == [1, 2]
    assert sorted(RequestRecord.objects.values_list("repeat_count", flat=True)) == [1, 2]


def test_calls_a_key_admitted_keep_a_row_each(tenant_a, roomy):
    # when
    responses = [tenant_a.get("/v1/accounts/acct_nope") for _ in range(5)]

    # then: refusals of an identified caller too (they are bounded by the key's budget)
    assert {r.status_code for r in responses} == {404}
    records = RequestRecord.objects.filter(tenant_id=tenant_a.tenant.id)
    assert sorted(records.values_list("request_id", flat=True)) == sorted(r["X-Request-Id"] for r in responses)
    assert set(records.values_list("repeat_count", "repeat_key")) == {(1, None)}


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_are_counted_on_one_row_without_losing_one(roomy):
    # given
    barrier = threading.Barrier(12)

    def attempt():
        try:
            barrier.wait(timeout=20)
            for _ in range(5):
                access_denial_record(actor="system:provider:prv_x", action="provider event", target="prv_x",
                                     reason="unknown provider", unauthenticated=True, client_address="192.0.2.1")
        finally:
            connections.close_all()

    # when
    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # then
    assert list(AccessDenial.objects.values_list("repeat_count", flat=True)) == [60]


def test_an_identified_refusal_is_written_each_time():
    # when
    for _ in range(3):
        access_denial_record(actor="api_key:key_x", action="POST /v1/accounts", reason="read-only API key",
                             tenant_id="tnt_x")

    # then
    assert list(AccessDenial.objects.values_list("repeat_count", flat=True)) == [1, 1, 1]


# --- what operators see ----------------------------------------------------------------------

@pytest.fixture
def platform(client):
    root = get_user_model().objects.create_superuser(username="root", password="pw-root", email="root@example.com")
    client.force_login(root)
    return client


def test_the_lists_show_how_many_times_and_the_clients_own_id_finds_its_request(platform, tenant_a, roomy):
    # given
    for _ in range(3):
        unknown_provider_event(APIClient())
    quoted = tenant_a.client.get("/v1/accounts", HTTP_X_REQUEST_ID="client-order-77")

    # when
    denials = platform.get(reverse("admin:audit_accessdenial_changelist"))
    requests = platform.get(reverse("admin:audit_requestrecord_changelist"))
    found = platform.get(reverse("admin:audit_requestrecord_changelist"), {"q": "client-order-77"})
    page = platform.get(reverse("admin:audit_requestrecord_change",
                                args=[RequestRecord.objects.get(request_id=quoted["X-Request-Id"]).pk]))

    # then
    assert denials.status_code == requests.status_code == found.status_code == page.status_code == 200
    assert "column-times" in denials.content.decode() and "column-times" in requests.content.decode()
    assert [row.repeat_count for row in denials.context["cl"].result_list] == [3]
    assert 3 in [row.repeat_count for row in requests.context["cl"].result_list]
    assert [row.request_id for row in found.context["cl"].result_list] == [quoted["X-Request-Id"]]
    assert "client-order-77" in page.content.decode()


def test_the_access_log_line_names_both_ids(tenant_a, caplog):
    # when
    with caplog.at_level(logging.INFO, logger="zentra.request"):
        response = tenant_a.client.get("/v1/accounts", HTTP_X_REQUEST_ID="client-order-78")

    # then
    record = next(r for r in caplog.records if r.name == "zentra.request")
    line = json.loads(JsonFormatter().format(record))
    assert (line["request_id"], line["client_request_id"]) == (response["X-Request-Id"], "client-order-78")


def test_a_counted_denial_comes_back_as_it_stands_in_the_database(roomy):
    # when: the same refusal twice
    first = access_denial_record(actor="system:provider:prv_y", action="provider event", target="prv_y",
                                 reason="unknown provider", unauthenticated=True, client_address="192.0.2.7")
    second = access_denial_record(actor="system:provider:prv_y", action="provider event", target="prv_y",
                                  reason="unknown provider", unauthenticated=True, client_address="192.0.2.7")
    # then: one row, and what is returned is that row, not a copy of what was asked
    assert second.pk == first.pk and (first.repeat_count, second.repeat_count) == (1, 2)
    assert AccessDenial.objects.get(pk=first.pk) == second
    assert second.client_address == "192.0.2.7" and second.created_at == first.created_at
