from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from zentra.api.pagination import LIST_PARAMS
from zentra.api.views import TenantAPIView

from .. import currencies
from ..models import ACCOUNT_TYPES, Account
from ..selectors import account_balances
from ..services.accounts import account_close, account_create, account_freeze, account_unfreeze
from .serializers import AccountCreateInput, AccountOutput, AccountTransitionInput, BalanceOutput

class AccountListCreateView(TenantAPIView):
    @extend_schema(operation_id="accounts_list", responses=AccountOutput(many=True), parameters=LIST_PARAMS + [
        OpenApiParameter("customer", str), OpenApiParameter("currency", str),
        OpenApiParameter("account_type", str, enum=ACCOUNT_TYPES),
        OpenApiParameter("status", str, enum=["active", "frozen", "closed"])])
    def get(self, request):
        queryset = Account.objects.filter(tenant=self.tenant).select_related("tenant")
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
        account = self.tenant_object(Account.objects.all(), account_id, label="account")
        return Response(AccountOutput(account).data)


class AccountBalanceView(TenantAPIView):
    @extend_schema(operation_id="accounts_balance", responses=BalanceOutput)
    def get(self, request, account_id):
        account = self.tenant_object(Account.objects.all(), account_id, label="account")
        now = timezone.now()
        balances = account_balances(account)
        return Response(BalanceOutput({"account": account.id, "currency": account.currency, **balances.as_dict(),
                                       "as_of": now}).data)


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
