from django.urls import path

from . import views

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
    path("transactions", views.TransactionListCreateView.as_view(), name="transactions"),
    path("transactions/<str:transaction_id>", views.TransactionDetailView.as_view(), name="transaction"),
    path("transactions/<str:transaction_id>/reverse", views.TransactionReverseView.as_view(),
         name="transaction-reverse"),
    path("ledger_periods", views.LedgerPeriodListView.as_view(), name="ledger-periods"),
    # Before the detail route, so that "close" is never read as an id.
    path("ledger_periods/close", views.LedgerPeriodCloseView.as_view(), name="ledger-period-close"),
    path("ledger_periods/<str:period_id>", views.LedgerPeriodDetailView.as_view(), name="ledger-period"),
    path("ledger_periods/<str:period_id>/closing_balances.csv", views.LedgerPeriodClosingBalancesView.as_view(),
         name="ledger-period-closing-balances"),
]
