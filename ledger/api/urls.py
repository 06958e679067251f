from django.urls import path

from . import views

urlpatterns = [
    path("accounts", views.AccountListCreateView.as_view(), name="accounts"),
    path("accounts/<str:account_id>", views.AccountDetailView.as_view(), name="account"),
    path("accounts/<str:account_id>/balance", views.AccountBalanceView.as_view(), name="account-balance"),
    path("accounts/<str:account_id>/freeze", views.AccountFreezeView.as_view(), name="account-freeze"),
    path("accounts/<str:account_id>/unfreeze", views.AccountUnfreezeView.as_view(), name="account-unfreeze"),
    path("accounts/<str:account_id>/close", views.AccountCloseView.as_view(), name="account-close"),
]
