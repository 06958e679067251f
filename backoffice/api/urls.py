from django.urls import path

from . import views

urlpatterns = [
    path("trace/<str:object_id>", views.TraceView.as_view(), name="trace"),
]
