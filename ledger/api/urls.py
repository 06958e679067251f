from django.urls import path

from . import payments, views

urlpatterns = [
    path("accounts", views.AccountListCreateView.as_view(), name="accounts"),
    path("accounts/<str:account_id>", views.AccountDetailView.as_view(), name="account"),
    path("accounts/<str:account_id>/balance", views.AccountBalanceView.as_view(), name="account-balance"),
    path("accounts/<str:account_id>/freeze", views.AccountFreezeView.as_view(), name="account-freeze"),
    path("accounts/<str:account_id>/unfreeze", views.AccountUnfreezeView.as_view(), name="account-unfreeze"),
    path("accounts/<str:account_id>/close", views.AccountCloseView.as_view(), name="account-close"),
    path("accounts/<str:account_id>/entries", views.AccountEntriesView.as_view(), name="account-entries"),
    path("holds", views.HoldListCreateView.as_view(), name="holds"),
    path("holds/<str:hold_id>", views.HoldDetailView.as_view(), name="hold"),
    path("holds/<str:hold_id>/capture", views.HoldCaptureView.as_view(), name="hold-capture"),
    path("holds/<str:hold_id>/release", views.HoldReleaseView.as_view(), name="hold-release"),
    path("payment_intents", payments.PaymentIntentListCreateView.as_view(), name="payment-intents"),
    path("payment_intents/<str:intent_id>", payments.PaymentIntentDetailView.as_view(), name="payment-intent"),
    path("payment_intents/<str:intent_id>/confirm", payments.PaymentIntentConfirmView.as_view(),
         name="payment-intent-confirm"),
    path("payment_intents/<str:intent_id>/cancel", payments.PaymentIntentCancelView.as_view(),
         name="payment-intent-cancel"),
    path("payouts", payments.PayoutListCreateView.as_view(), name="payouts"),
    path("payouts/<str:payout_id>", payments.PayoutDetailView.as_view(), name="payout"),
    path("providers/<str:provider_id>/events", payments.ProviderEventView.as_view(), name="provider-events"),
    path("transactions", views.TransactionListCreateView.as_view(), name="transactions"),
    path("transactions/<str:transaction_id>", views.TransactionDetailView.as_view(), name="transaction"),
    path("transactions/<str:transaction_id>/reverse", views.TransactionReverseView.as_view(),
         name="transaction-reverse"),
]
