"""Sign-up, the account page and account deletion, and this project's versions of Django's log-in and password
views: they add the throttling (accounts/throttling.py) and revoke old credentials (accounts/services.py)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from accounts import throttling
from accounts.forms import AccountDeleteForm, EmailChangeForm, SignUpForm
from accounts.http import AuthenticatedHttpRequest
from accounts.selectors import user_verified_email
from accounts.services import EmailConfirmError, email_change_request, email_confirm, user_delete, user_password_changed
from spots.exports import user_export_response
from spots.selectors import reminders_off_for_account


def _password_guessing_response(request: HttpRequest) -> HttpResponse:
    minutes = throttling.PASSWORD_CHECK_WINDOW_S // 60
    return throttling.too_many_response(
        request,
        title="Too many wrong passwords",
        message=(
            f"Your current password was given wrong {settings.MELANOMA_PASSWORD_CHECK_FAILURES} times. "
            f"Please try again in {minutes} minutes."
        ),
        retry_after_s=throttling.PASSWORD_CHECK_WINDOW_S,
    )


class LoginView(auth_views.LoginView):
    def form_valid(self, form):
        response = super().form_valid(form)
        # This browser has now logged in to the account: someone else's guessing from its network will not
        # lock it out (accounts/throttling.py).
        throttling.device_cookie_set(response, user=form.get_user())
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    def post(self, request, *args, **kwargs):
        # Whoever holds a session (a borrowed laptop) must not get unlimited guesses at the current password.
        if throttling.password_check_blocked(user=request.user):
            return _password_guessing_response(request)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        if self.request.POST.get("old_password") and "old_password" in form.errors:
            throttling.password_check_failed(user=self.request.user)
        return super().form_invalid(form)

    def form_valid(self, form):
        response = super().form_valid(form)  # saves, and keeps this session alive
        user_password_changed(user=form.user)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    def form_valid(self, form):
        if throttling.password_reset_rate_limit_hit(self.request, email=form.cleaned_data["email"]):
            return throttling.too_many_response(
                self.request,
                title="Too many reset e-mails",
                message=(
                    "Too many password-reset e-mails were asked for lately, for this address or from your network. "
                    "Please check your inbox (and spam folder) for the ones already sent, or try again in an hour."
                ),
                retry_after_s=throttling.HOUR_S,
            )
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    def form_valid(self, form):
        response = super().form_valid(form)
        user_password_changed(user=form.user)
        # Whoever proved control of the e-mail on this browser may log in from it, even if guessing from the
        # same network still holds that network's lockout.
        throttling.device_cookie_set(response, user=form.user)
        return response


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("classifier:upload")
    if request.method == "POST" and throttling.signup_rate_limit_hit(request):
        return throttling.too_many_response(
            request,
            title="Too many new accounts",
            message=(
                f"At most {settings.MELANOMA_SIGNUP_RATE_PER_HOUR} accounts an hour can be made from one network. "
                "Please try again later."
            ),
            retry_after_s=throttling.HOUR_S,
        )
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        # Several backends are configured (axes first): name the one that checks passwords.
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome! Your account is ready.")
        if user.email:
            email_change_request(user=user, email=user.email)
            messages.info(request, "We sent you a link to confirm your e-mail address.")
        response = redirect("classifier:upload")
        throttling.device_cookie_set(response, user=user)
        return response
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


@require_safe
@login_required
def account(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(
        request,
        "registration/account.html",
        {
            "email_verified": user_verified_email(user=request.user) is not None,
            "reminders_off": reminders_off_for_account(user=request.user),
        },
    )


@require_safe
@login_required
def account_export(request: AuthenticatedHttpRequest) -> FileResponse:
    """Export my data (GDPR art. 20): a zip with every photo, the checks, spots and reviews, and the reports."""
    return user_export_response(user=request.user)


@login_required
def account_email(request: AuthenticatedHttpRequest) -> HttpResponse:
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
def account_delete(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST" and throttling.password_check_blocked(user=request.user):
        return _password_guessing_response(request)
    form = AccountDeleteForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        user = request.user
        logout(request)
        user_delete(user=user)
        messages.success(request, "Your account, photos and results are deleted.")
        return redirect("landing")
    if request.method == "POST" and request.POST.get("password") and "password" in form.errors:
        throttling.password_check_failed(user=request.user)
    return render(
        request, "registration/account_confirm_delete.html", {"form": form}, status=400 if form.errors else 200
    )
