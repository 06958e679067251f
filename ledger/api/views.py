from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from zentra.api.pagination import LIST_PARAMS
from zentra.api.views import TenantAPIView

from .. import currencies
from zentra.errors import ValidationFailed

from ..models import ACCOUNT_TYPES, TRANSACTION_KINDS, Account, Hold, LedgerEntry, LedgerTransaction
from ..selectors import (HOLD_STATUSES, account_balances, account_statement, holds_for_api,
                         holds_with_effective_status, transactions_for_api, with_hold_totals)
from ..services.holds import hold_capture, hold_place, hold_release
from ..services.accounts import account_close, account_create, account_freeze, account_unfreeze
from ..services.postings import EntryInput, ledger_transaction_post, ledger_transaction_reverse
from .serializers import (AccountCreateInput, AccountOutput, AccountTransitionInput, BalanceOutput, HoldCaptureInput,
                          HoldCreateInput, HoldOutput, HoldReleaseInput,
                          StatementEntryOutput, TransactionCreateInput, TransactionOutput, TransactionReverseInput)

def parse_as_of(raw: str | None):
    if not raw:
        return None
    try:
        value = parse_datetime(raw.replace(" ", "+"))  # a bare "+" in a query string arrives as a space
    except ValueError:  # well formed but impossible, such as month 13
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationFailed("as_of must be an ISO 8601 timestamp with a time zone",
                               errors=[{"field": "as_of", "message": "ISO 8601 timestamp with time zone expected."}])
    return value


class AccountListCreateView(TenantAPIView):
    @extend_schema(operation_id="accounts_list", responses=AccountOutput(many=True), parameters=LIST_PARAMS + [
        OpenApiParameter("customer", str), OpenApiParameter("currency", str),
        OpenApiParameter("account_type", str, enum=ACCOUNT_TYPES),
        OpenApiParameter("status", str, enum=["active", "frozen", "closed"])])
    def get(self, request):
        queryset = with_hold_totals(Account.objects.filter(tenant=self.tenant))
        if "customer" in request.query_params:
            queryset = queryset.filter(customer=request.query_params["customer"])
        queryset = self.choice_filter(queryset, "currency", currencies.EXPONENTS)
        queryset = self.choice_filter(queryset, "account_type", ACCOUNT_TYPES)
        queryset = self.choice_filter(queryset, "status", {"active", "frozen", "closed"})
        return self.list_response(queryset, AccountOutput)

    @extend_schema(operation_id="accounts_create", request=AccountCreateInput, responses={201: AccountOutput})
    def post(self, request):
        data = AccountCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        account = account_create(tenant=self.tenant, actor=self.actor, **data.validated_data)
        return Response(AccountOutput(account).data, status=status.HTTP_201_CREATED)


class AccountDetailView(TenantAPIView):
    @extend_schema(operation_id="accounts_retrieve", responses=AccountOutput)
    def get(self, request, account_id):
        account = self.tenant_object(with_hold_totals(Account.objects.all()), account_id, label="account")
        return Response(AccountOutput(account).data)


class AccountBalanceView(TenantAPIView):
    @extend_schema(operation_id="accounts_balance", responses=BalanceOutput, parameters=[
        OpenApiParameter("as_of", str, description="ISO 8601 timestamp; the balance at that instant (default now)")])
    def get(self, request, account_id):
        account = self.tenant_object(Account.objects.all(), account_id, label="account")
        as_of = parse_as_of(request.query_params.get("as_of"))
        balances = account_balances(account, as_of=as_of)
        return Response(BalanceOutput({"account": account.id, "currency": account.currency, **balances.as_dict(),
                                       "as_of": as_of or timezone.now()}).data)


class _AccountTransitionView(TenantAPIView):
    def transition(self, request, account_id, service):
        account = self.tenant_object(Account.objects.all(), account_id, label="account")
        data = AccountTransitionInput(data=request.data)
        data.is_valid(raise_exception=True)
        account = service(account=account, actor=self.actor, reason=data.validated_data["reason"])
        return Response(AccountOutput(account).data)


class AccountFreezeView(_AccountTransitionView):
    @extend_schema(operation_id="accounts_freeze", request=AccountTransitionInput, responses=AccountOutput)
    def post(self, request, account_id):
        return self.transition(request, account_id, account_freeze)


class AccountUnfreezeView(_AccountTransitionView):
    @extend_schema(operation_id="accounts_unfreeze", request=AccountTransitionInput, responses=AccountOutput)
    def post(self, request, account_id):
        return self.transition(request, account_id, account_unfreeze)


class AccountCloseView(_AccountTransitionView):
    @extend_schema(operation_id="accounts_close", request=AccountTransitionInput, responses=AccountOutput)
    def post(self, request, account_id):
        return self.transition(request, account_id, account_close)


class AccountEntriesView(TenantAPIView):
    @extend_schema(operation_id="accounts_entries", responses=StatementEntryOutput(many=True), parameters=LIST_PARAMS)
    def get(self, request, account_id):
        account = self.tenant_object(Account.objects.all(), account_id, label="account")
        statement = account_statement(account)
        return self.list_response(statement, StatementEntryOutput, order_field="sequence")


class TransactionListCreateView(TenantAPIView):
    @extend_schema(operation_id="transactions_list", responses=TransactionOutput(many=True), parameters=LIST_PARAMS + [
        OpenApiParameter("account", str, description="transactions with an entry on this account"),
        OpenApiParameter("kind", str, enum=TRANSACTION_KINDS)])
    def get(self, request):
        queryset = transactions_for_api(self.tenant)
        cursor_queryset = queryset
        account_id = request.query_params.get("account")
        if account_id:
            account = self.tenant_object(Account.objects.all(), account_id, label="account")
            queryset = queryset.filter(pk__in=LedgerEntry.objects.filter(account=account).values("transaction_id"))
        queryset = self.choice_filter(queryset, "kind", TRANSACTION_KINDS)
        return self.list_response(queryset, TransactionOutput, cursor_queryset=cursor_queryset)

    @extend_schema(operation_id="transactions_create", request=TransactionCreateInput, responses={201: TransactionOutput})
    def post(self, request):
        data = TransactionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        entries = [EntryInput(account_id=e["account"], direction=e["direction"], amount=e["amount"],
                              currency=e.get("currency")) for e in values["entries"]]
        txn = ledger_transaction_post(tenant=self.tenant, entries=entries, actor=self.actor,
                                      description=values["description"], metadata=values["metadata"],
                                      effective_at=values["effective_at"])
        return Response(TransactionOutput(txn).data, status=status.HTTP_201_CREATED)


class TransactionDetailView(TenantAPIView):
    @extend_schema(operation_id="transactions_retrieve", responses=TransactionOutput)
    def get(self, request, transaction_id):
        txn = self.tenant_object(transactions_for_api(self.tenant), transaction_id, label="transaction")
        return Response(TransactionOutput(txn).data)


class TransactionReverseView(TenantAPIView):
    @extend_schema(operation_id="transactions_reverse", request=TransactionReverseInput,
                   responses={201: TransactionOutput})
    def post(self, request, transaction_id):
        self.tenant_object(LedgerTransaction.objects.all(), transaction_id, label="transaction")
        data = TransactionReverseInput(data=request.data)
        data.is_valid(raise_exception=True)
        reversal = ledger_transaction_reverse(tenant=self.tenant, transaction_id=transaction_id, actor=self.actor,
                                              reason=data.validated_data["reason"])
        return Response(TransactionOutput(reversal).data, status=status.HTTP_201_CREATED)


class HoldListCreateView(TenantAPIView):
    @extend_schema(operation_id="holds_list", responses=HoldOutput(many=True), parameters=LIST_PARAMS + [
        OpenApiParameter("account", str), OpenApiParameter("status", str, enum=HOLD_STATUSES)])
    def get(self, request):
        queryset = holds_for_api(self.tenant)
        cursor_queryset = queryset
        if request.query_params.get("account"):
            account = self.tenant_object(Account.objects.all(), request.query_params["account"], label="account")
            queryset = queryset.filter(account=account)
        status_filter = request.query_params.get("status")
        if status_filter is not None:
            if status_filter not in HOLD_STATUSES:
                raise ValidationFailed(f"status: unknown value {status_filter!r}", errors=[
                    {"field": "status", "message": f"Must be one of {', '.join(HOLD_STATUSES)}."}])
            queryset = queryset.filter(holds_with_effective_status(status_filter))
        return self.list_response(queryset, HoldOutput, cursor_queryset=cursor_queryset)

    @extend_schema(operation_id="holds_create", request=HoldCreateInput, responses={201: HoldOutput})
    def post(self, request):
        data = HoldCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        hold = hold_place(tenant=self.tenant, account_id=values["account"], amount=values["amount"],
                          expires_at=values["expires_at"], reference=values["reference"],
                          metadata=values["metadata"], actor=self.actor)
        return Response(HoldOutput(hold).data, status=status.HTTP_201_CREATED)


class HoldDetailView(TenantAPIView):
    @extend_schema(operation_id="holds_retrieve", responses=HoldOutput)
    def get(self, request, hold_id):
        return Response(HoldOutput(self.tenant_object(holds_for_api(self.tenant), hold_id, label="hold")).data)


class HoldCaptureView(TenantAPIView):
    @extend_schema(operation_id="holds_capture", request=HoldCaptureInput, responses=HoldOutput)
    def post(self, request, hold_id):
        self.tenant_object(Hold.objects.all(), hold_id, label="hold")
        data = HoldCaptureInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        hold = hold_capture(tenant=self.tenant, hold_id=hold_id, destination_account_id=values["destination_account"],
                            amount=values.get("amount"), final=values["final"], reason=values["reason"],
                            actor=self.actor)
        return Response(HoldOutput(hold).data)


class HoldReleaseView(TenantAPIView):
    @extend_schema(operation_id="holds_release", request=HoldReleaseInput, responses=HoldOutput)
    def post(self, request, hold_id):
        self.tenant_object(Hold.objects.all(), hold_id, label="hold")
        data = HoldReleaseInput(data=request.data)
        data.is_valid(raise_exception=True)
        hold = hold_release(tenant=self.tenant, hold_id=hold_id, reason=data.validated_data["reason"],
                            actor=self.actor)
        return Response(HoldOutput(hold).data)
