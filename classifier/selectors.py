"""Reads: queries that views, the API, tasks and commands share."""

from django.db.models import QuerySet
from django.http import Http404

from classifier.models import ModelVersion, Prediction


def model_version_get_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()


def prediction_list_for_user(*, user) -> QuerySet[Prediction]:
    """The user's own predictions, newest first (staff too: history is personal, admin is for everything)."""
    return Prediction.objects.filter(user=user).select_related("model_version", "user").order_by("-created_at", "-id")


PREDICTION_VIEW_PERMISSION = "classifier.view_prediction"


def user_may_view_others_predictions(*, user) -> bool:
    """Only an explicit permission (the "clinician" group, or a superuser) opens other people's predictions: the
    staff flag alone does not, since it is given to people who only look after the service (model versions)."""
    return bool(
        getattr(user, "is_authenticated", False) and user.is_active and user.has_perm(PREDICTION_VIEW_PERMISSION)
    )


def prediction_get_for_user(*, user, pk: int, owner_only: bool = False) -> Prediction:
    """One prediction the user may see: their own, or anyone's for a user with the view permission (unless
    owner_only, for changes only the owner may make). Otherwise Http404 — never 403, so that another user's ids
    cannot be probed. Views go through classifier.access.prediction_get_for_request, which also audits."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("Prediction not found.")
    queryset = Prediction.objects.select_related("model_version", "user", "spot")
    if owner_only or not user_may_view_others_predictions(user=user):
        queryset = queryset.filter(user=user)
    try:
        return queryset.get(pk=pk)
    except (Prediction.DoesNotExist, ValueError, TypeError, OverflowError) as error:
        raise Http404("Prediction not found.") from error
