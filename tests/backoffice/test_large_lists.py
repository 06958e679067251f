"""Lists that stay cheap at millions of rows: no full count, no DISTINCT over the listed table
for a filter, and filters that still narrow the list correctly. (How fast they open at a
million rows is measured in bench/console.py, not here.)"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import RequestRecord
from tenants.admin_base import EstimatedCountPaginator
from tests.ledger.checks import customer_account, external_account, transfer

pytestmark = pytest.mark.django_db


def records(tenant_id: str, count: int, **fields) -> None:
    RequestRecord.objects.bulk_create([
        RequestRecord(request_id=f"req_{tenant_id}_{fields.get('method', 'GET')}_{n}", tenant_id=tenant_id,
                      actor="api_key:key_x", method=fields.get("method", "GET"), path="/v1/accounts",
                      status=fields.get("status", 200), duration_ms=3) for n in range(count)])


def listed(response) -> list:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_an_evidence_list_reads_no_distinct_values_and_no_full_count(client, tenant_a):
    # given
    records(tenant_a.tenant.id, 30)
    client.force_login(tenant_a.member("compliance"))
    # when
    with CaptureQueriesContext(connections["evidence"]) as evidence, CaptureQueriesContext(connections["default"]):
        response = client.get(reverse("admin:audit_requestrecord_changelist"))
    # then
    assert len(listed(response)) == 30
    first = RequestRecord.objects.filter(tenant_id=tenant_a.tenant.id).first()
    assert f'href="{reverse("admin:trace", args=[first.request_id])}"' in response.content.decode()
    sql = [q["sql"] for q in evidence.captured_queries]
    assert not [s for s in sql if "DISTINCT" in s], sql
    counts = [s for s in sql if "COUNT(" in s.upper()]
    assert counts and all(re.search(r"LIMIT \d+", s) for s in counts), counts  # bounded counts only


@pytest.mark.parametrize("query, expected", [
    ({"method": "POST"}, {"POST"}),
    ({"status": "422"}, {"GET 422"}),
    ({"within": "1h"}, {"GET", "POST", "GET 422"}),
    ({"within": "30d", "method": "GET"}, {"GET", "GET 422"}),
], ids=["method", "status", "last-hour", "month-and-method"])
def test_request_records_filter_by_method_status_and_time(client, tenant_a, query, expected):
    # given: a GET, a POST and a refused GET from now, and one from two days ago that only a
    # longer window shows
    tenant_id = tenant_a.tenant.id
    for method, status in (("GET", 200), ("POST", 201), ("GET", 422)):
        RequestRecord.objects.create(request_id=f"req_{method}{status}", tenant_id=tenant_id, actor="",
                                     method=method, path="/v1/x", status=status, duration_ms=1)
    old = RequestRecord.objects.create(request_id="req_old", tenant_id=tenant_id, actor="", method="DELETE",
                                       path="/v1/x", status=204, duration_ms=1)
    RequestRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    client.force_login(tenant_a.member("compliance"))
    # when
    shown = listed(client.get(reverse("admin:audit_requestrecord_changelist"), query))
    # then
    names = {r.method if r.status < 400 else f"{r.method} {r.status}" for r in shown}
    assert names == expected


def test_the_currency_filter_offers_the_operators_currencies_and_filters_entries(client, tenant_a, tenant_b):
    # given: dollars and euros at tenant A, yen only at tenant B
    for currency, amount in (("USD", 500), ("EUR", 700)):
        transfer(tenant_a.tenant, external_account(tenant_a.tenant, currency),
                 customer_account(tenant_a.tenant, currency), amount)
    customer_account(tenant_b.tenant, "JPY")
    client.force_login(tenant_a.member("operator"))
    url = reverse("admin:ledger_ledgerentry_changelist")
    # when
    page = client.get(url)
    euros = listed(client.get(url, {"currency": "EUR"}))
    # then
    choices = {choice["display"] for spec in page.context["cl"].filter_specs if spec.title == "currency"
               for choice in spec.choices(page.context["cl"])}
    assert choices == {"All", "EUR", "USD"}  # never another tenant's yen
    assert {e.currency for e in euros} == {"EUR"} and len(euros) == 2


def test_entries_list_newest_first(client, tenant_a):
    source, destination = external_account(tenant_a.tenant), customer_account(tenant_a.tenant)
    first = transfer(tenant_a.tenant, source, destination, 100)
    last = transfer(tenant_a.tenant, source, destination, 200)
    client.force_login(tenant_a.member("operator"))
    shown = listed(client.get(reverse("admin:ledger_ledgerentry_changelist")))
    assert [e.transaction_id for e in shown] == [last.id, last.id, first.id, first.id]


def test_the_paginator_counts_exactly_up_to_its_bound_then_estimates(tenant_a, monkeypatch):
    records(tenant_a.tenant.id, 12)
    rows = RequestRecord.objects.filter(tenant_id=tenant_a.tenant.id).order_by("-id")
    monkeypatch.setattr(EstimatedCountPaginator, "EXACT_UP_TO", 20)
    assert EstimatedCountPaginator(rows, 5).count == 12
    monkeypatch.setattr(EstimatedCountPaginator, "EXACT_UP_TO", 5)
    with CaptureQueriesContext(connections["evidence"]) as queries:
        estimated = EstimatedCountPaginator(rows, 5).count
    # past the bound: the planner's estimate, never less than the rows already seen
    assert estimated >= 6
    assert any(q["sql"].startswith("EXPLAIN") for q in queries.captured_queries)
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper() and "LIMIT" not in q["sql"]]
