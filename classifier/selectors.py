"""Reads: queries that views, the API, tasks and commands share."""

from django.db.models import QuerySet
from django.http import Http404

from classifier.models import ModelVersion, Prediction


def model_version_get_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()


def prediction_list_for_user(*, user) -> QuerySet[Prediction]:
    """The user's own predictions, newest first (staff too: history is personal, admin is for everything)."""
    return Prediction.objects.filter(user=user).select_related("model_version", "user").order_by("-created_at", "-id")


def prediction_get_for_user(*, user, pk: int, allow_staff: bool = True) -> Prediction:
    """One prediction the user may see: their own, or any for staff (unless allow_staff=False, for changes
    only the owner may make). Otherwise Http404 — never 403, so that another user's ids cannot be probed."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("Prediction not found.")
    queryset = Prediction.objects.select_related("model_version", "user", "spot")
    if not (allow_staff and user.is_staff):
        queryset = queryset.filter(user=user)
    try:
        return queryset.get(pk=pk)
    except (Prediction.DoesNotExist, ValueError, TypeError, OverflowError) as error:
        raise Http404("Prediction not found.") from error
