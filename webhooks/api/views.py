from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from zentra.api.pagination import LIST_PARAMS, list_body
from zentra.api.views import TenantAPIView

from ..models import Event, WebhookEndpoint
from ..services import (endpoint_create, endpoint_delete, endpoint_redeliver_failed, endpoint_rotate_secret,
                        event_redeliver)
from .serializers import (DeliveryOutput, EndpointCreateInput, EndpointOutput, EndpointWithSecretOutput,
                          EventDetailOutput, EventOutput, RedeliverFailedInput, RedeliverInput)


class EventListView(TenantAPIView):
    @extend_schema(operation_id="events_list", responses=EventOutput(many=True), parameters=LIST_PARAMS + [
        OpenApiParameter("type", str, description="exact type (hold.created) or a family (hold.*)"),
        OpenApiParameter("resource", str, description="id of the object the event is about")])
    def get(self, request):
        queryset = Event.objects.filter(tenant=self.tenant)
        event_type = request.query_params.get("type")
        if event_type:
            if event_type.endswith(".*"):
                queryset = queryset.filter(type__startswith=event_type[:-1])
            else:
                queryset = queryset.filter(type=event_type)
        if request.query_params.get("resource"):
            queryset = queryset.filter(resource_id=request.query_params["resource"])
        return self.list_response(queryset, EventOutput)


class EventDetailView(TenantAPIView):
    @extend_schema(operation_id="events_retrieve", responses=EventDetailOutput)
    def get(self, request, event_id):
        event = self.tenant_object(Event.objects.all(), event_id, label="event")
        return Response(EventDetailOutput(event).data)


class EventRedeliverView(TenantAPIView):
    @extend_schema(operation_id="events_redeliver", request=RedeliverInput, responses={202: DeliveryOutput(many=True)})
    def post(self, request, event_id):
        event = self.tenant_object(Event.objects.all(), event_id, label="event")
        data = RedeliverInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = None
        if data.validated_data.get("endpoint"):
            endpoint = self.tenant_object(WebhookEndpoint.objects.filter(deleted_at__isnull=True),
                                          data.validated_data["endpoint"], label="webhook endpoint")
        deliveries = event_redeliver(event=event, endpoint=endpoint, actor=self.actor)
        return Response(list_body(DeliveryOutput(deliveries, many=True).data, False), status=status.HTTP_202_ACCEPTED)


def _endpoints(tenant):
    return WebhookEndpoint.objects.filter(tenant=tenant, deleted_at__isnull=True)


class EndpointListCreateView(TenantAPIView):
    @extend_schema(operation_id="webhook_endpoints_list", responses=EndpointOutput(many=True), parameters=LIST_PARAMS)
    def get(self, request):
        return self.list_response(_endpoints(self.tenant), EndpointOutput)

    @extend_schema(operation_id="webhook_endpoints_create", request=EndpointCreateInput,
                   responses={201: EndpointWithSecretOutput})
    def post(self, request):
        data = EndpointCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        endpoint, secret = endpoint_create(tenant=self.tenant, url=values["url"], actor=self.actor,
                                           event_types_filter=values.get("event_types"),
                                           description=values["description"])
        endpoint.secret = secret
        return Response(EndpointWithSecretOutput(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointDetailView(TenantAPIView):
    @extend_schema(operation_id="webhook_endpoints_retrieve", responses=EndpointOutput)
    def get(self, request, endpoint_id):
        endpoint = self.tenant_object(_endpoints(self.tenant), endpoint_id, label="webhook endpoint")
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(operation_id="webhook_endpoints_delete", responses=EndpointOutput)
    def delete(self, request, endpoint_id):
        endpoint = self.tenant_object(_endpoints(self.tenant), endpoint_id, label="webhook endpoint")
        endpoint = endpoint_delete(endpoint=endpoint, actor=self.actor)
        return Response({**EndpointOutput(endpoint).data, "deleted": True})


class EndpointRotateSecretView(TenantAPIView):
    @extend_schema(operation_id="webhook_endpoints_rotate_secret", request=None,
                   responses=EndpointWithSecretOutput)
    def post(self, request, endpoint_id):
        endpoint = self.tenant_object(_endpoints(self.tenant), endpoint_id, label="webhook endpoint")
        endpoint, secret = endpoint_rotate_secret(endpoint=endpoint, actor=self.actor)
        endpoint.secret = secret
        return Response(EndpointWithSecretOutput(endpoint).data)


class EndpointRedeliverFailedView(TenantAPIView):
    @extend_schema(operation_id="webhook_endpoints_redeliver_failed", request=RedeliverFailedInput,
                   responses={202: DeliveryOutput(many=True)})
    def post(self, request, endpoint_id):
        endpoint = self.tenant_object(_endpoints(self.tenant), endpoint_id, label="webhook endpoint")
        data = RedeliverFailedInput(data=request.data)
        data.is_valid(raise_exception=True)
        deliveries = endpoint_redeliver_failed(endpoint=endpoint, since=data.validated_data["since"], actor=self.actor)
        return Response(list_body(DeliveryOutput(deliveries, many=True).data, False), status=status.HTTP_202_ACCEPTED)
