"""Mounted under /accounts/, beside django.contrib.auth's log-in, log-out and password pages."""

from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("", views.account, name="account"),
    path("delete/", views.account_delete, name="account_delete"),
]
