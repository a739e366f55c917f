"""Writes for user accounts."""

from axes.utils import reset as axes_reset
from django.contrib.auth.models import User
from django.db import transaction
from rest_framework.authtoken.models import Token

from classifier.services.prediction_writes import predictions_delete_for_user


@transaction.atomic
def user_delete(*, user: User) -> None:
    """Delete a user and everything of theirs: their predictions with every stored photo (after commit), then
    the user row (cascade: API token). Rows they reviewed as a clinician keep the review; only the reviewer
    link goes (SET_NULL)."""
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
    Token.objects.filter(user=user).delete()
    axes_reset(username=user.get_username())
