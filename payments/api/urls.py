from django.urls import path

from . import settlement, views

urlpatterns = [
    path("payment_intents", views.PaymentIntentListCreateView.as_view(), name="payment-intents"),
    path("payment_intents/<str:intent_id>", views.PaymentIntentDetailView.as_view(), name="payment-intent"),
    path("payment_intents/<str:intent_id>/confirm", views.PaymentIntentConfirmView.as_view(),
         name="payment-intent-confirm"),
    path("payment_intents/<str:intent_id>/cancel", views.PaymentIntentCancelView.as_view(),
         name="payment-intent-cancel"),
    path("payment_intents/<str:intent_id>/approve", views.PaymentIntentApproveView.as_view(),
         name="payment-intent-approve"),
    path("payment_intents/<str:intent_id>/decline", views.PaymentIntentDeclineView.as_view(),
         name="payment-intent-decline"),
    path("payouts", views.PayoutListCreateView.as_view(), name="payouts"),
    path("payouts/<str:payout_id>", views.PayoutDetailView.as_view(), name="payout"),
    path("policy_rules", views.PolicyRuleListCreateView.as_view(), name="policy-rules"),
    path("policy_rules/<str:rule_id>", views.PolicyRuleDetailView.as_view(), name="policy-rule"),
    path("providers/<str:provider_id>/events", views.ProviderEventView.as_view(), name="provider-events"),
    path("providers/<str:provider_id>/settlement_report", settlement.SandboxSettlementReportView.as_view(),
         name="provider-settlement-report"),
    path("settlement_reports", settlement.SettlementReportListCreateView.as_view(), name="settlement-reports"),
    path("settlement_reports/<str:report_id>", settlement.SettlementReportDetailView.as_view(),
         name="settlement-report"),
]
