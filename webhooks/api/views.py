from collections.abc import Callable

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from zentra.api.fields import ReasonInput
from zentra.api.pagination import LIST_PARAMS, list_body
from zentra.api.schema import ListOf, problems
from zentra.api.views import TenantAPIView

from ..errors import EndpointDisabled
from ..models import WebhookEndpoint
from ..selectors import deliveries_of, endpoints_of, events_of
from ..services.endpoints import (
    endpoint_create,
    endpoint_delete,
    endpoint_disable,
    endpoint_enable,
    endpoint_rotate_secret,
)
from ..services.replay import endpoint_redeliver_failed, event_redeliver
from ..shapes import (
    DeliveryBody,
    EventBody,
    EventWithDeliveriesBody,
    WebhookEndpointBody,
    WebhookEndpointWithSecretBody,
    delivery_body,
    event_body,
    event_with_deliveries_body,
    webhook_endpoint_body,
    webhook_endpoint_with_secret_body,
)
from .serializers import EndpointCreateInput, RedeliverFailedInput, RedeliverInput


class EventListView(TenantAPIView):
    @extend_schema(operation_id="events_list", responses=ListOf(EventBody), parameters=LIST_PARAMS + [
        OpenApiParameter("type", str, description="exact type (hold.created) or a family (hold.*)"),
        OpenApiParameter("resource", str, description="id of the object the event is about")])
    def get(self, request: Request) -> Response:
        events = events_of(self.tenant, type_filter=request.query_params.get("type"),
                           resource_id=request.query_params.get("resource"))
        return self.list_response(events, event_body)


class EventDetailView(TenantAPIView):
    @extend_schema(operation_id="events_retrieve", responses=EventWithDeliveriesBody)
    def get(self, request: Request, event_id: str) -> Response:
        event = self.tenant_object(events_of(self.tenant), event_id, label="event")
        return Response(event_with_deliveries_body(event, deliveries_of(event)))


class EventRedeliverView(TenantAPIView):
    @extend_schema(operation_id="events_redeliver", request=RedeliverInput, responses={202: ListOf(DeliveryBody)})
    @problems(EndpointDisabled)
    def post(self, request: Request, event_id: str) -> Response:
        data = RedeliverInput(data=request.data)
        data.is_valid(raise_exception=True)
        deliveries = event_redeliver(tenant=self.tenant, event_id=event_id, actor=self.actor,
                                     endpoint_id=data.validated_data.get("endpoint") or None)
        return Response(list_body([delivery_body(d, attempts=[]) for d in deliveries], False),
                        status=status.HTTP_202_ACCEPTED)


class EndpointListCreateView(TenantAPIView):
    @extend_schema(operation_id="webhook_endpoints_list", responses=ListOf(WebhookEndpointBody),
                   parameters=LIST_PARAMS)
    def get(self, request: Request) -> Response:
        return self.list_response(endpoints_of(self.tenant), webhook_endpoint_body)

    @extend_schema(operation_id="webhook_endpoints_create", request=EndpointCreateInput,
                   responses={201: WebhookEndpointWithSecretBody})
    def post(self, request: Request) -> Response:
        data = EndpointCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        endpoint, secret = endpoint_create(tenant=self.tenant, url=values["url"], actor=self.actor,
                                           event_types_filter=values.get("event_types"),
                                           description=values["description"])
        return Response(webhook_endpoint_with_secret_body(endpoint, secret), status=status.HTTP_201_CREATED)


class EndpointDetailView(TenantAPIView):
    @extend_schema(operation_id="webhook_endpoints_retrieve", responses=WebhookEndpointBody)
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = self.tenant_object(endpoints_of(self.tenant), endpoint_id, label="webhook endpoint")
        return Response(webhook_endpoint_body(endpoint))

    @extend_schema(operation_id="webhook_endpoints_delete", responses={200: WebhookEndpointBody})
    def delete(self, request: Request, endpoint_id: str) -> Response:
        """Stops deliveries to the endpoint and removes it from the lists; its delivery history
        stays. Answers the endpoint with status `deleted`."""
        endpoint = endpoint_delete(tenant=self.tenant, endpoint_id=endpoint_id, actor=self.actor)
        return Response(webhook_endpoint_body(endpoint))


class _EndpointStatusView(TenantAPIView):
    change: Callable[..., WebhookEndpoint]

    def post(self, request: Request, endpoint_id: str) -> Response:
        reason = _reason(request)
        endpoint = type(self).change(tenant=self.tenant, endpoint_id=endpoint_id, actor=self.actor, reason=reason)
        return Response(webhook_endpoint_body(endpoint))


class EndpointDisableView(_EndpointStatusView):
    """Stop sending to the endpoint; deliveries wait until it is enabled again. Emits
    `webhook_endpoint.disabled` (to every other subscribed endpoint)."""

    change = endpoint_disable

    @extend_schema(operation_id="webhook_endpoints_disable", request=ReasonInput, responses=WebhookEndpointBody)
    def post(self, request: Request, endpoint_id: str) -> Response:
        return super().post(request, endpoint_id)


class EndpointEnableView(_EndpointStatusView):
    """Send to the endpoint again; what waited goes out at the next sweep."""

    change = endpoint_enable

    @extend_schema(operation_id="webhook_endpoints_enable", request=ReasonInput, responses=WebhookEndpointBody)
    def post(self, request: Request, endpoint_id: str) -> Response:
        return super().post(request, endpoint_id)


def _reason(request: Request) -> str:
    data = ReasonInput(data=request.data)
    data.is_valid(raise_exception=True)
    reason: str = data.validated_data["reason"]
    return reason


class EndpointRotateSecretView(TenantAPIView):
    @extend_schema(operation_id="webhook_endpoints_rotate_secret", request=None,
                   responses={200: WebhookEndpointWithSecretBody})
    def post(self, request: Request, endpoint_id: str) -> Response:
        endpoint, secret = endpoint_rotate_secret(tenant=self.tenant, endpoint_id=endpoint_id, actor=self.actor)
        return Response(webhook_endpoint_with_secret_body(endpoint, secret))


class EndpointRedeliverFailedView(TenantAPIView):
    @extend_schema(operation_id="webhook_endpoints_redeliver_failed", request=RedeliverFailedInput,
                   responses={202: ListOf(DeliveryBody)})
    @problems(EndpointDisabled)
    def post(self, request: Request, endpoint_id: str) -> Response:
        data = RedeliverFailedInput(data=request.data)
        data.is_valid(raise_exception=True)
        deliveries = endpoint_redeliver_failed(tenant=self.tenant, endpoint_id=endpoint_id,
                                               since=data.validated_data["since"], actor=self.actor)
        return Response(list_body([delivery_body(d, attempts=[]) for d in deliveries], False),
                        status=status.HTTP_202_ACCEPTED)
