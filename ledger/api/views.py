"""The ledger API: accounts, balances, statements, transactions and holds.

Views validate the input's shape, call one service (which finds, locks and checks what it
touches, once) and answer the resource's public shape."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from zentra.api.fields import ReasonInput
from zentra.api.pagination import LIST_PARAMS
from zentra.api.schema import ListOf, problems
from zentra.api.views import TenantAPIView
from zentra.errors import ValidationFailed

from .. import currencies
from ..errors import (
    AccountNotActive,
    AccountNotEmpty,
    AlreadyReversed,
    AmountExceedsHold,
    CurrencyMismatch,
    HoldNotActive,
    InsufficientFunds,
    InvalidStateTransition,
    PolicyDenied,
    UnbalancedTransaction,
)
from ..models import ACCOUNT_TYPES, TRANSACTION_KINDS, Account, LedgerEntry
from ..selectors import (
    HOLD_STATUSES,
    account_balances,
    account_statement,
    holds_of,
    holds_with_effective_status,
    transactions_of,
    with_hold_totals,
)
from ..services.accounts import account_close, account_create, account_freeze, account_unfreeze
from ..services.holds import hold_capture, hold_place, hold_release
from ..services.postings import EntryInput
from ..services.transfers import ledger_transaction_post, ledger_transaction_reverse
from ..shapes import (
    AccountBody,
    BalanceBody,
    HoldBody,
    StatementEntryBody,
    TransactionBody,
    account_body,
    balance_body,
    hold_body,
    statement_entry_body,
    transaction_body,
)
from .serializers import AccountCreateInput, HoldCaptureInput, HoldCreateInput, TransactionCreateInput

POSTING_PROBLEMS = (AccountNotActive, CurrencyMismatch, InsufficientFunds, UnbalancedTransaction, PolicyDenied)


def parse_as_of(raw: str | None) -> Any:
    if raw is None:  # absent: now; present but empty is no timestamp
        return None
    try:
        value = parse_datetime(raw.replace(" ", "+"))  # a bare "+" in a query string arrives as a space
    except ValueError:  # well formed but impossible, such as month 13
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationFailed("as_of must be an ISO 8601 timestamp with a time zone",
                               errors=[{"field": "as_of", "message": "ISO 8601 timestamp with time zone expected."}])
    # In UTC: PostgreSQL refuses offsets beyond 15:59 (ISO 8601 allows 23:59). An instant
    # before year 1 or after 9999 in UTC has the balance of the first or last one Python holds.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


def reason_of(request: Request) -> str:
    data = ReasonInput(data=request.data)
    data.is_valid(raise_exception=True)
    reason: str = data.validated_data["reason"]
    return reason


class AccountListCreateView(TenantAPIView):
    @extend_schema(operation_id="accounts_list", responses=ListOf(AccountBody), parameters=LIST_PARAMS + [
        OpenApiParameter("customer", str), OpenApiParameter("currency", str, enum=sorted(currencies.EXPONENTS)),
        OpenApiParameter("account_type", str, enum=ACCOUNT_TYPES),
        OpenApiParameter("status", str, enum=["active", "frozen", "closed"])])
    def get(self, request: Request) -> Response:
        queryset = with_hold_totals(Account.objects.filter(tenant=self.tenant))
        if "customer" in request.query_params:
            queryset = queryset.filter(customer=request.query_params["customer"])
        queryset = self.choice_filter(queryset, "currency", currencies.EXPONENTS)
        queryset = self.choice_filter(queryset, "account_type", ACCOUNT_TYPES)
        queryset = self.choice_filter(queryset, "status", {"active", "frozen", "closed"})
        return self.list_response(queryset, account_body)

    @extend_schema(operation_id="accounts_create", request=AccountCreateInput, responses={201: AccountBody})
    def post(self, request: Request) -> Response:
        data = AccountCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        account = account_create(tenant=self.tenant, actor=self.actor, **data.validated_data)
        return Response(account_body(account), status=status.HTTP_201_CREATED)


class AccountDetailView(TenantAPIView):
    @extend_schema(operation_id="accounts_retrieve", responses=AccountBody)
    def get(self, request: Request, account_id: str) -> Response:
        account = self.tenant_object(with_hold_totals(Account.objects.all()), account_id, label="account")
        return Response(account_body(account))


class AccountBalanceView(TenantAPIView):
    @extend_schema(operation_id="accounts_balance", responses=BalanceBody, parameters=[
        OpenApiParameter("as_of", OpenApiTypes.DATETIME,
                         description="ISO 8601 timestamp with a time zone; the balance at that instant (default now)")])
    def get(self, request: Request, account_id: str) -> Response:
        account = self.tenant_object(Account, account_id, label="account")
        as_of = parse_as_of(request.query_params.get("as_of"))
        balances = account_balances(account, as_of=as_of)
        return Response(balance_body(account, balances, as_of or timezone.now()))


class _AccountTransitionView(TenantAPIView):
    service: Callable[..., Account]

    def post(self, request: Request, account_id: str) -> Response:
        account = type(self).service(tenant=self.tenant, account_id=account_id, actor=self.actor,
                                     reason=reason_of(request))
        return Response(account_body(account))


class AccountFreezeView(_AccountTransitionView):
    service = account_freeze

    @extend_schema(operation_id="accounts_freeze", request=ReasonInput, responses=AccountBody)
    @problems(InvalidStateTransition)
    def post(self, request: Request, account_id: str) -> Response:
        return super().post(request, account_id)


class AccountUnfreezeView(_AccountTransitionView):
    service = account_unfreeze

    @extend_schema(operation_id="accounts_unfreeze", request=ReasonInput, responses=AccountBody)
    @problems(InvalidStateTransition)
    def post(self, request: Request, account_id: str) -> Response:
        return super().post(request, account_id)


class AccountCloseView(_AccountTransitionView):
    service = account_close

    @extend_schema(operation_id="accounts_close", request=ReasonInput, responses=AccountBody)
    @problems(InvalidStateTransition, AccountNotEmpty)
    def post(self, request: Request, account_id: str) -> Response:
        return super().post(request, account_id)


class AccountEntriesView(TenantAPIView):
    @extend_schema(operation_id="accounts_entries", responses=ListOf(StatementEntryBody), parameters=LIST_PARAMS)
    def get(self, request: Request, account_id: str) -> Response:
        account = self.tenant_object(Account, account_id, label="account")
        return self.list_response(account_statement(account), statement_entry_body, order_field="sequence")


class TransactionListCreateView(TenantAPIView):
    @extend_schema(operation_id="transactions_list", responses=ListOf(TransactionBody), parameters=LIST_PARAMS + [
        OpenApiParameter("account", str, description="transactions with an entry on this account"),
        OpenApiParameter("kind", str, enum=TRANSACTION_KINDS)])
    def get(self, request: Request) -> Response:
        queryset = transactions_of(self.tenant)
        cursor_queryset = queryset
        account_id = request.query_params.get("account")
        if account_id:
            account = self.tenant_object(Account, account_id, label="account")
            queryset = queryset.filter(pk__in=LedgerEntry.objects.filter(account=account).values("transaction_id"))
        queryset = self.choice_filter(queryset, "kind", TRANSACTION_KINDS)
        return self.list_response(queryset, transaction_body, cursor_queryset=cursor_queryset)

    @extend_schema(operation_id="transactions_create", request=TransactionCreateInput, responses={201: TransactionBody})
    @problems(*POSTING_PROBLEMS)
    def post(self, request: Request) -> Response:
        data = TransactionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        entries = [EntryInput(account_id=e["account"], direction=e["direction"], amount=e["amount"],
                              currency=e.get("currency")) for e in values["entries"]]
        txn = ledger_transaction_post(tenant=self.tenant, entries=entries, actor=self.actor,
                                      description=values["description"], metadata=values["metadata"],
                                      effective_at=values["effective_at"])
        return Response(transaction_body(txn, entries=txn.posted_entries, fresh=True),  # type: ignore[attr-defined]
                        status=status.HTTP_201_CREATED)


class TransactionDetailView(TenantAPIView):
    @extend_schema(operation_id="transactions_retrieve", responses=TransactionBody)
    def get(self, request: Request, transaction_id: str) -> Response:
        txn = self.tenant_object(transactions_of(self.tenant), transaction_id, label="transaction")
        return Response(transaction_body(txn))


class TransactionReverseView(TenantAPIView):
    @extend_schema(operation_id="transactions_reverse", request=ReasonInput, responses={201: TransactionBody})
    @problems(AlreadyReversed, InvalidStateTransition, *POSTING_PROBLEMS)
    def post(self, request: Request, transaction_id: str) -> Response:
        reversal = ledger_transaction_reverse(tenant=self.tenant, transaction_id=transaction_id, actor=self.actor,
                                              reason=reason_of(request))
        return Response(transaction_body(reversal, entries=reversal.posted_entries, fresh=True),  # type: ignore[attr-defined]
                        status=status.HTTP_201_CREATED)


class HoldListCreateView(TenantAPIView):
    @extend_schema(operation_id="holds_list", responses=ListOf(HoldBody), parameters=LIST_PARAMS + [
        OpenApiParameter("account", str), OpenApiParameter("status", str, enum=HOLD_STATUSES)])
    def get(self, request: Request) -> Response:
        queryset = holds_of(self.tenant)
        cursor_queryset = queryset
        if request.query_params.get("account"):
            account = self.tenant_object(Account, request.query_params["account"], label="account")
            queryset = queryset.filter(account=account)
        status_filter = request.query_params.get("status")
        if status_filter is not None:
            if status_filter not in HOLD_STATUSES:
                raise ValidationFailed(f"status: unknown value {status_filter!r}", errors=[
                    {"field": "status", "message": f"Must be one of {', '.join(HOLD_STATUSES)}."}])
            queryset = queryset.filter(holds_with_effective_status(status_filter))
        return self.list_response(queryset, hold_body, cursor_queryset=cursor_queryset)

    @extend_schema(operation_id="holds_create", request=HoldCreateInput, responses={201: HoldBody})
    @problems(*POSTING_PROBLEMS)
    def post(self, request: Request) -> Response:
        data = HoldCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        hold = hold_place(tenant=self.tenant, account_id=values["account"], amount=values["amount"],
                          expires_at=values.get("expires_at"), expires_in=values.get("expires_in"),
                          reference=values["reference"], metadata=values["metadata"], actor=self.actor)
        return Response(hold_body(hold), status=status.HTTP_201_CREATED)


class HoldDetailView(TenantAPIView):
    @extend_schema(operation_id="holds_retrieve", responses=HoldBody)
    def get(self, request: Request, hold_id: str) -> Response:
        return Response(hold_body(self.tenant_object(holds_of(self.tenant), hold_id, label="hold")))


class HoldCaptureView(TenantAPIView):
    @extend_schema(operation_id="holds_capture", request=HoldCaptureInput, responses=HoldBody)
    @problems(HoldNotActive, AmountExceedsHold, *POSTING_PROBLEMS)
    def post(self, request: Request, hold_id: str) -> Response:
        data = HoldCaptureInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        hold = hold_capture(tenant=self.tenant, hold_id=hold_id, destination_account_id=values["destination_account"],
                            amount=values.get("amount"), final=values["final"], reason=values["reason"],
                            actor=self.actor)
        return Response(hold_body(hold))


class HoldReleaseView(TenantAPIView):
    @extend_schema(operation_id="holds_release", request=ReasonInput, responses=HoldBody)
    @problems(HoldNotActive, *POSTING_PROBLEMS)
    def post(self, request: Request, hold_id: str) -> Response:
        hold = hold_release(tenant=self.tenant, hold_id=hold_id, reason=reason_of(request), actor=self.actor)
        return Response(hold_body(hold))
