from django.urls import path

from . import views

urlpatterns = [
    path("approvals", views.ApprovalListView.as_view(), name="approvals"),
    path("approvals/<str:approval_id>", views.ApprovalDetailView.as_view(), name="approval"),
    path("approvals/<str:approval_id>/approve", views.ApprovalApproveView.as_view(), name="approval-approve"),
    path("approvals/<str:approval_id>/reject", views.ApprovalRejectView.as_view(), name="approval-reject"),
]
