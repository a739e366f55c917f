"""Writes for user accounts: deletion, and adding or changing the e-mail address (with a confirmation link)."""

from __future__ import annotations

from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, User
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import VerifiedEmail
from api_tokens.services import tokens_revoke_all
from classifier.services.prediction_writes import predictions_delete_for_user
from melanoma_site.links import absolute_url

EMAIL_CONFIRM_SALT = "accounts.email-confirm"


class EmailConfirmError(Exception):
    """The confirmation link is damaged, expired or for an account that no longer exists."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@transaction.atomic
def user_delete(*, user: User) -> None:
    """Delete a user and everything of theirs: their predictions with every stored photo (after commit), then
    the user row (cascade: API token, spots, confirmed e-mail). Rows they reviewed as a clinician keep the review;
    only the reviewer link goes (SET_NULL)."""
    predictions_delete_for_user(user=user)
    user.delete()


@transaction.atomic
def user_password_changed(*, user: User) -> None:
    """After a password change or reset: whoever knew the old password (or held a token made with it) is out.

    Every API token is deleted (a token does not depend on the password, so it would outlive it). Every other
    session is already dead: Django keeps a hash of the password in each session and refuses a session whose hash
    no longer matches (the view that changed the password refreshes only its own). Failed log-ins recorded against
    the account are forgotten, which lifts a lockout that someone else caused by guessing at it.
    """
    tokens_revoke_all(user=user)
    axes_reset(username=user.get_username())


def email_confirm_token(*, user: AbstractBaseUser, email: str) -> str:
    # Signed, not stored: the link carries the new address, so nothing changes until it is opened.
    return signing.dumps({"user": user.pk, "email": email}, salt=EMAIL_CONFIRM_SALT)


def email_change_request(*, user: AbstractBaseUser, email: str) -> None:
    """Send a confirmation link to the new address; the account keeps its old address until it is opened.
    (The address came through an EmailField, so it is well formed.)"""
    email = email.strip()
    link = absolute_url("accounts:email_confirm", email_confirm_token(user=user, email=email))
    context = {"user": user, "link": link, "days": settings.MELANOMA_EMAIL_CONFIRM_MAX_AGE_S // 86400}
    send_mail(
        subject="Confirm your e-mail address for Skin check",
        message=render_to_string("registration/email_confirm_email.txt", context),
        from_email=None,
        recipient_list=[email],
    )


@transaction.atomic
def email_confirm(*, token: str) -> User:
    """Open a confirmation link: the address becomes the account's, confirmed. Works logged out."""
    try:
        data = signing.loads(token, salt=EMAIL_CONFIRM_SALT, max_age=settings.MELANOMA_EMAIL_CONFIRM_MAX_AGE_S)
    except signing.SignatureExpired as error:
        raise EmailConfirmError("This confirmation link has expired. Please ask for a new one.") from error
    except signing.BadSignature as error:
        raise EmailConfirmError("This confirmation link is not valid. Please copy the whole link.") from error
    user = get_user_model().objects.select_for_update().filter(pk=data.get("user")).first()
    if user is None:
        raise EmailConfirmError("This confirmation link is for an account that no longer exists.")
    user.email = data["email"]
    user.save(update_fields=["email"])
    VerifiedEmail.objects.update_or_create(user=user, defaults={"email": data["email"], "verified_at": timezone.now()})
    return user
