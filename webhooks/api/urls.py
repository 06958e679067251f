from django.urls import path

from . import views

urlpatterns = [
    path("events", views.EventListView.as_view(), name="events"),
    path("events/<str:event_id>", views.EventDetailView.as_view(), name="event"),
    path("events/<str:event_id>/redeliver", views.EventRedeliverView.as_view(), name="event-redeliver"),
    path("webhook_endpoints", views.EndpointListCreateView.as_view(), name="webhook-endpoints"),
    path("webhook_endpoints/<str:endpoint_id>", views.EndpointDetailView.as_view(), name="webhook-endpoint"),
    path("webhook_endpoints/<str:endpoint_id>/disable", views.EndpointDisableView.as_view(),
         name="webhook-endpoint-disable"),
    path("webhook_endpoints/<str:endpoint_id>/enable", views.EndpointEnableView.as_view(),
         name="webhook-endpoint-enable"),
    path("webhook_endpoints/<str:endpoint_id>/rotate_secret", views.EndpointRotateSecretView.as_view(),
         name="webhook-endpoint-rotate"),
    path("webhook_endpoints/<str:endpoint_id>/redeliver_failed", views.EndpointRedeliverFailedView.as_view(),
         name="webhook-endpoint-redeliver-failed"),
]
