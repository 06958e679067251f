"""The ledger API: accounts, balances, statements, transactions, holds and ledger periods.

Views validate the input's shape, call one service (which finds, locks and checks what it
touches, once) and answer the resource's public shape."""

from collections.abc import Callable

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from audit.api.views import answered
from audit.errors import ApprovalNotPending
from audit.shapes import ApprovalBody
from zentra.api.fields import ReasonInput, parse_instant
from zentra.api.pagination import LIST_PARAMS
from zentra.api.renderers import CSVRenderer
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
    PeriodClosed,
    PolicyDenied,
    UnbalancedTransaction,
)
from ..models import ACCOUNT_TYPES, TRANSACTION_KINDS, Account, LedgerEntry, LedgerPeriod
from ..selectors import (
    HOLD_STATUSES,
    account_balances,
    account_statement,
    holds_of,
    holds_with_effective_status,
    statement_order_field,
    transactions_of,
    with_hold_totals,
)
from ..services.accounts import account_close, account_create, account_freeze, account_unfreeze
from ..services.approvals import period_close_or_propose, transaction_reverse_or_propose
from ..services.holds import hold_capture, hold_place, hold_release
from ..services.periods import CSV_HEADER, period_csv
from ..services.postings import EntryInput
from ..services.transfers import ledger_transaction_post
from ..shapes import (
    AccountBody,
    BalanceBody,
    HoldBody,
    LedgerPeriodBody,
    StatementEntryBody,
    TransactionBody,
    account_body,
    balance_body,
    hold_body,
    ledger_period_body,
    statement_entry_body,
    transaction_body,
)
from .serializers import (
    AccountCreateInput,
    HoldCaptureInput,
    HoldCreateInput,
    LedgerPeriodCloseInput,
    TransactionCreateInput,
)

# Every posting goes through post_entries, so each may meet a closed period (a back-dated one does).
POSTING_PROBLEMS = (AccountNotActive, CurrencyMismatch, InsufficientFunds, UnbalancedTransaction, PolicyDenied,
                    PeriodClosed)


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
        # Absent: now. An instant before year 1 or after 9999 in UTC has the balance of the first
        # or last one Python holds.
        as_of = parse_instant(request.query_params.get("as_of"), "as_of", clamp=True)
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
        return self.list_response(account_statement(account), statement_entry_body,
                                  order_field=statement_order_field(account))


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
        return self.answer_with_change(
            status.HTTP_201_CREATED,
            lambda txn: transaction_body(txn, entries=txn.posted_entries, fresh=True),  # type: ignore[attr-defined]
            lambda: ledger_transaction_post(tenant=self.tenant, entries=entries, actor=self.actor,
                                            description=values["description"], metadata=values["metadata"],
                                            effective_at=values["effective_at"]))


class TransactionDetailView(TenantAPIView):
    @extend_schema(operation_id="transactions_retrieve", responses=TransactionBody)
    def get(self, request: Request, transaction_id: str) -> Response:
        txn = self.tenant_object(transactions_of(self.tenant), transaction_id, label="transaction")
        return Response(transaction_body(txn))


class TransactionReverseView(TenantAPIView):
    @extend_schema(operation_id="transactions_reverse", request=ReasonInput,
                   responses={201: TransactionBody, 202: ApprovalBody})
    @problems(AlreadyReversed, InvalidStateTransition, ApprovalNotPending, *POSTING_PROBLEMS)
    def post(self, request: Request, transaction_id: str) -> Response:
        """Reverse a posting: 201 with the reversal, or, when the tenant asks API keys for a second actor
        on reversals above its threshold, 202 with the approval it waits for."""
        result = transaction_reverse_or_propose(tenant=self.tenant, transaction_id=transaction_id,
                                                actor=self.actor, reason=reason_of(request))
        return answered(result, lambda reversal: transaction_body(reversal, entries=reversal.posted_entries,
                                                                  fresh=True), created=True)


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
        return self.answer_with_change(status.HTTP_201_CREATED, hold_body, lambda: hold_place(
            tenant=self.tenant, account_id=values["account"], amount=values["amount"],
            expires_at=values.get("expires_at"), expires_in=values.get("expires_in"), reference=values["reference"],
            metadata=values["metadata"], actor=self.actor))


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
        return self.answer_with_change(status.HTTP_200_OK, hold_body, lambda: hold_capture(
            tenant=self.tenant, hold_id=hold_id, destination_account_id=values["destination_account"],
            amount=values.get("amount"), final=values["final"], reason=values["reason"], actor=self.actor))


class HoldReleaseView(TenantAPIView):
    @extend_schema(operation_id="holds_release", request=ReasonInput, responses=HoldBody)
    @problems(HoldNotActive, *POSTING_PROBLEMS)
    def post(self, request: Request, hold_id: str) -> Response:
        return self.answer_with_change(status.HTTP_200_OK, hold_body, lambda: hold_release(
            tenant=self.tenant, hold_id=hold_id, reason=reason_of(request), actor=self.actor))


class LedgerPeriodListView(TenantAPIView):
    @extend_schema(operation_id="ledger_periods_list", responses=ListOf(LedgerPeriodBody), parameters=LIST_PARAMS)
    def get(self, request: Request) -> Response:
        """The tenant's closed periods, newest first."""
        return self.list_response(LedgerPeriod.objects.filter(tenant=self.tenant).select_related("checkpoint"),
                                  ledger_period_body)


class LedgerPeriodCloseView(TenantAPIView):
    @extend_schema(operation_id="ledger_periods_close", request=LedgerPeriodCloseInput,
                   responses={201: LedgerPeriodBody, 202: ApprovalBody})
    @problems(InvalidStateTransition, ApprovalNotPending)
    def post(self, request: Request) -> Response:
        """Close the ledger until `until`: from then on a posting effective before it is refused with 422
        period_closed (by the database as well). The trial balance, every account's closing balance and
        chain head, and a checkpoint of every account head are kept and signed. `until` in the future: 400;
        not after the latest close: 409 invalid_state_transition. When the tenant asks API keys for a
        second actor on period closes: 202 with the approval it waits for."""
        data = LedgerPeriodCloseInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = period_close_or_propose(tenant=self.tenant, until=data.validated_data["until"], actor=self.actor)
        return answered(result, ledger_period_body, created=True)


class LedgerPeriodDetailView(TenantAPIView):
    @extend_schema(operation_id="ledger_periods_retrieve", responses=LedgerPeriodBody)
    def get(self, request: Request, period_id: str) -> Response:
        return Response(ledger_period_body(self.tenant_object(LedgerPeriod, period_id, label="ledger period")))


class LedgerPeriodClosingBalancesView(TenantAPIView):
    renderer_classes = [CSVRenderer]

    @extend_schema(operation_id="ledger_periods_closing_balances", responses={200: OpenApiResponse(
        OpenApiTypes.STR, description="The closing balances CSV (docs/periods.md): `#` lines naming the period, "
                                      "its checkpoint and trial balance; the header `" + CSV_HEADER + "`; one "
                                      "line per account; and last `# signature algorithm=Ed25519 kid=... "
                                      "value=...`, the base64 Ed25519 signature of every byte before that line "
                                      "under the key `kid` (GET /v1/signing_keys).")})
    def get(self, request: Request, period_id: str) -> Response:
        period = self.tenant_object(LedgerPeriod.objects.select_related("checkpoint"), period_id,
                                    label="ledger period")
        return Response(period_csv(period), content_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{period.id}_closing_balances.csv"'})
