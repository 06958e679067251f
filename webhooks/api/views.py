from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from zentra.api.pagination import LIST_PARAMS
from zentra.api.views import TenantAPIView

from ..models import Event
from .serializers import EventOutput


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
    @extend_schema(operation_id="events_retrieve", responses=EventOutput)
    def get(self, request, event_id):
        event = self.tenant_object(Event.objects.all(), event_id, label="event")
        return Response(EventOutput(event).data)
