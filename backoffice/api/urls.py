from django.urls import path

from . import views

urlpatterns = [
    path("trace/<str:object_id>", views.TraceView.as_view(), name="trace"),
    path("evidence_exports", views.EvidenceExportListCreateView.as_view(), name="evidence-exports"),
    path("evidence_exports/<str:export_id>", views.EvidenceExportDetailView.as_view(), name="evidence-export"),
    path("evidence_exports/<str:export_id>/download", views.EvidenceExportDownloadView.as_view(),
         name="evidence-export-download"),
]
