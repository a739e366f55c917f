"""Sign-up, the account page and account deletion; the other auth pages are django.contrib.auth's views."""

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from accounts.forms import AccountDeleteForm, SignUpForm
from accounts.services import user_delete


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("classifier:upload")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        # Several backends are configured (axes first): name the one that checks passwords.
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome! Your account is ready.")
        return redirect("classifier:upload")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


@require_safe
@login_required
def account(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/account.html")


@login_required
def account_delete(request: HttpRequest) -> HttpResponse:
    form = AccountDeleteForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        user = request.user
        assert user.is_authenticated  # noqa: S101 - narrows the type; login_required guarantees it
        logout(request)
        user_delete(user=user)
        messages.success(request, "Your account, photos and results are deleted.")
        return redirect("landing")
    return render(
        request, "registration/account_confirm_delete.html", {"form": form}, status=400 if form.errors else 200
    )
