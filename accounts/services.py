"""Writes for user accounts."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from classifier.services.prediction_writes import predictions_delete_for_user


@transaction.atomic
def user_delete(*, user: AbstractBaseUser) -> None:
    """Delete a user and everything of theirs: their predictions with every stored photo (after commit), then
    the user row (cascade: API token). Rows they reviewed as a clinician keep the review; only the reviewer
    link goes (SET_NULL)."""
    predictions_delete_for_user(user=user)
    user.delete()
