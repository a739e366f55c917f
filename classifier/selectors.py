"""Reads: queries that views, the API, tasks, commands and the admin share."""

import math
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
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


# --- clinician review ---------------------------------------------------------------------------------------


def _prediction_has_field(name: str) -> bool:
    return any(field.name == name for field in Prediction._meta.get_fields())


def predictions_review_queue() -> QuerySet[Prediction]:
    """Finished checks the model flagged (risk level moderate or high; before risk levels existed: the "refer"
    verdict) that no clinician has reviewed yet, oldest first, so that nobody waits behind newer uploads."""
    queryset = Prediction.objects.filter(status=Prediction.Status.DONE, reviewed=False)
    if _prediction_has_field("risk_level"):
        queryset = queryset.filter(risk_level__in=("moderate", "high"))
    else:
        queryset = queryset.filter(verdict=Prediction.Verdict.REFER)
    return queryset.select_related("user", "model_version").order_by("id")


@dataclass(frozen=True)
class Proportion:
    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """95 % Wilson score interval: honest about how little 3 of 4 says, unlike the bare 0.75."""
        if not self.total:
            return None
        z, n, p = 1.959964, self.total, self.hits / self.total
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ReviewedPerformance:
    """How one model version did on the checks clinicians reviewed. Melanoma is the positive class; the model
    said "positive" when its answer was refer. A confirmed "other" diagnosis counts as not melanoma."""

    model_version: ModelVersion
    reviewed: int
    sensitivity: Proportion  # melanomas the model referred / confirmed melanomas
    specificity: Proportion  # non-melanomas the model called low risk / confirmed non-melanomas


def model_versions_reviewed_performance() -> list[ReviewedPerformance]:
    melanoma = Q(confirmed_diagnosis=Prediction.Diagnosis.MELANOMA)
    counts = {
        row["model_version"]: row
        for row in Prediction.objects.filter(status=Prediction.Status.DONE, reviewed=True, model_version__isnull=False)
        .exclude(confirmed_diagnosis="")
        .values("model_version")
        .annotate(
            reviewed=Count("id"),
            melanomas=Count("id", filter=melanoma),
            caught=Count("id", filter=melanoma & Q(verdict=Prediction.Verdict.REFER)),
            others=Count("id", filter=~melanoma),
            cleared=Count("id", filter=~melanoma & Q(verdict=Prediction.Verdict.LOW_RISK)),
        )
    }
    results = []
    for model_version in ModelVersion.objects.order_by("-created_at"):
        row = counts.get(model_version.pk)
        if row is None:  # no reviewed check for this version yet
            results.append(ReviewedPerformance(model_version, 0, Proportion(0, 0), Proportion(0, 0)))
            continue
        results.append(
            ReviewedPerformance(
                model_version=model_version,
                reviewed=row["reviewed"],
                sensitivity=Proportion(row["caught"], row["melanomas"]),
                specificity=Proportion(row["cleared"], row["others"]),
            )
        )
    return results
