from django.urls import path

from . import breaks

urlpatterns = [
    path("reconciliation_breaks", breaks.BreakListView.as_view(), name="reconciliation-breaks"),
    path("reconciliation_breaks/<str:break_id>", breaks.BreakDetailView.as_view(), name="reconciliation-break"),
    path("reconciliation_breaks/<str:break_id>/resolve", breaks.BreakResolveView.as_view(),
         name="reconciliation-break-resolve"),
]
