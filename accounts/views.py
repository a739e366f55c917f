"""Sign-up, the account page and account deletion; the other auth pages are django.contrib.auth's views."""

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from accounts.forms import AccountDeleteForm, EmailChangeForm, SignUpForm
from accounts.selectors import user_verified_email
from accounts.services import EmailConfirmError, email_change_request, email_confirm, user_delete
from spots.exports import user_export_response


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("classifier:upload")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        # Several backends are configured (axes first): name the one that checks passwords.
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome! Your account is ready.")
        if user.email:
            email_change_request(user=user, email=user.email)
            messages.info(request, "We sent you a link to confirm your e-mail address.")
        return redirect("classifier:upload")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


@require_safe
@login_required
def account(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "registration/account.html",
        {"email_verified": user_verified_email(user=request.user) is not None},
    )


@require_safe
@login_required
def account_export(request: HttpRequest) -> HttpResponse:
    """Export my data (GDPR art. 20): a zip with every photo, the checks, spots and reviews, and the reports."""
    return user_export_response(user=request.user)


@login_required
def account_email(request: HttpRequest) -> HttpResponse:
    """Add or change the e-mail address: a confirmation link goes to the new one."""
    form = EmailChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email_change_request(user=request.user, email=form.cleaned_data["email"])
        messages.success(
            request, f"We sent a confirmation link to {form.cleaned_data['email']}. Open it to use this address."
        )
        return redirect("accounts:account")
    return render(request, "registration/email_change.html", {"form": form}, status=400 if form.errors else 200)


@require_safe
def account_email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the confirmation e-mail; works logged out (the signed token names the account)."""
    try:
        user = email_confirm(token=token)
    except EmailConfirmError as error:
        return render(request, "registration/email_confirm_failed.html", {"message": error.message}, status=400)
    return render(request, "registration/email_confirmed.html", {"email": user.email})


@login_required
def account_delete(request: HttpRequest) -> HttpResponse:
    form = AccountDeleteForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        user = request.user
        logout(request)
        user_delete(user=user)
        messages.success(request, "Your account, photos and results are deleted.")
        return redirect("landing")
    return render(
        request, "registration/account_confirm_delete.html", {"form": form}, status=400 if form.errors else 200
    )
