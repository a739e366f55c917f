"""The one access check for every view that takes a prediction id (pages, image views, API): healthchecks'
`_get_rw_check_for_user`, plus an audit-log row whenever the prediction is someone else's."""

from django.http import HttpRequest

from audit.services import prediction_access_record
from classifier.models import Prediction
from classifier.selectors import prediction_get_for_user


def prediction_get_for_request(request: HttpRequest, pk: int, *, owner_only: bool = False) -> Prediction:
    """The prediction `pk` if request.user may see it (owner_only: only if it is theirs), else Http404.

    Opening someone else's photo, note or result is written to the audit log (who, whose, when, which URL)
    before anything is shown, so that no view of another person's data goes unrecorded.
    """
    prediction = prediction_get_for_user(user=request.user, pk=pk, owner_only=owner_only)
    if prediction.user_id != request.user.pk:
        prediction_access_record(
            viewer=request.user, prediction=prediction, method=request.method or "", url=request.get_full_path()
        )
    return prediction
