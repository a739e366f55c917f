"""Mounted under /accounts/, beside django.contrib.auth's log-in, log-out and password pages."""

from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("", views.account, name="account"),
    path("delete/", views.account_delete, name="account_delete"),
    path("email/", views.account_email, name="account_email"),
    path("email/confirm/<str:token>/", views.account_email_confirm, name="email_confirm"),
    path("export/", views.account_export, name="account_export"),
]
