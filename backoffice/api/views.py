"""The trace API: the whole story of any object the tenant owns."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from zentra.api.views import TenantAPIView

from ..selectors.trace import TraceBody, trace_of


class TraceView(TenantAPIView):
    """The story of an object (`req_`, `pi_`, `hold_`, `txn_`, `acct_`, `po_`, `evt_`, `del_`)
    and of everything it caused or was caused by, oldest first: requests, transitions, policy
    decisions, provider attempts, holds, ledger transactions with their entries, events,
    delivery attempts, history rows and access denials. For a payment intent it follows the
    money from the customer to the reserve, the settlement account, the merchant and the
    payouts that later moved it."""

    @extend_schema(operation_id="trace_retrieve", responses=TraceBody)
    def get(self, request: Request, object_id: str) -> Response:
        return Response(trace_of(self.scope, object_id, action=f"{request.method} {request.path}"))
