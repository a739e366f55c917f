"""Writes for the audit log."""

from audit.models import PredictionAccess


def prediction_access_record(*, viewer, prediction, method: str, url: str) -> PredictionAccess:
    """Record that `viewer` opened someone else's `prediction` at `url`."""
    return PredictionAccess.objects.create(
        viewer=viewer,
        viewer_username=viewer.get_username(),
        owner_id=prediction.user_id,
        owner_username=prediction.user.get_username(),
        prediction_pk=prediction.pk,
        method=method[:10],
        url=url[:2000],
    )
