"""Writes for spots: create, change, delete (with its checks and their photos), file a check under a spot,
re-check reminders and their unsubscribe links.

Views, the API and the Celery task call these; none of them holds rules of its own.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import IO

from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from classifier.models import Prediction
from classifier.services.prediction_writes import prediction_create, prediction_delete
from melanoma_site.links import absolute_url
from spots import body_map
from spots.models import ReminderOptOut, Spot
from spots.selectors import spots_due_for_reminder

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "spots.reminder-unsubscribe"
_NO_SUCH_SPOT = "No such spot."


class UnsubscribeError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- create, change, delete -----------------------------------------------------------------------


def _clean_fields(fields: dict) -> dict:
    """Check and normalise the given spot fields; the body region follows view/x/y."""
    errors: dict[str, str] = {}
    if "name" in fields:
        fields["name"] = (fields["name"] or "").strip()
        if not fields["name"]:
            errors["name"] = "Give the spot a name, e.g. 'mole left shoulder'."
        elif len(fields["name"]) > Spot.NAME_MAX_LENGTH:
            errors["name"] = f"The name is too long (at most {Spot.NAME_MAX_LENGTH} characters)."
    if "note" in fields:
        fields["note"] = (fields["note"] or "").strip()
        if len(fields["note"]) > Spot.NOTE_MAX_LENGTH:
            errors["note"] = f"The note is too long (at most {Spot.NOTE_MAX_LENGTH} characters)."
    if "recheck_months" in fields and fields["recheck_months"] not in Spot.Recheck.values:
        errors["recheck_months"] = "Choose no reminder, or every 1, 3 or 6 months."
    if errors:
        raise ValidationError(errors)
    return fields


def _place(spot: Spot) -> None:
    try:
        spot.region = body_map.region_for(view=spot.view, x=float(spot.x), y=float(spot.y))
    except (TypeError, ValueError) as error:
        raise ValidationError({"x": "Tap the body map to place the spot."}) from error


def spot_create(
    *,
    user,
    name: str,
    view: str = Spot.View.FRONT,
    x: float = 0.5,
    y: float = 0.5,
    note: str = "",
    recheck_months: int = Spot.Recheck.OFF,
) -> Spot:
    fields = _clean_fields({"name": name, "note": note, "recheck_months": recheck_months})
    spot = Spot(user=user, view=view, x=x, y=y, **fields)
    _place(spot)
    spot.save()
    return spot


SPOT_EDITABLE_FIELDS = ("name", "view", "x", "y", "note", "recheck_months")


@transaction.atomic
def spot_update(*, spot: Spot, **changes) -> Spot:
    """Change name, place, note or re-check interval; the checks filed under it take the new body region."""
    if unknown := set(changes) - set(SPOT_EDITABLE_FIELDS):
        raise ValidationError(f"Cannot change: {', '.join(sorted(unknown))}.")
    changes = _clean_fields(changes)
    for field, value in changes.items():
        setattr(spot, field, value)
    _place(spot)
    spot.save()
    spot.predictions.update(body_site=spot.region)
    return spot


@transaction.atomic
def spot_delete(*, spot: Spot) -> int:
    """Delete the spot and every check filed under it, photos included (after commit). Returns how many checks
    went. The pages ask first, saying how many photos will go."""
    checks = list(spot.predictions.all())
    for check in checks:
        prediction_delete(prediction=check)
    spot.delete()
    return len(checks)


def spot_resolve_for_user(*, user, spot_id) -> Spot | None:
    """A spot id from a form or the API, as one of the user's spots. Someone else's id and a missing one give
    the same ValidationError, so that nothing leaks."""
    if spot_id in (None, ""):
        return None
    try:
        return Spot.objects.get(pk=int(spot_id), user=user)
    except (Spot.DoesNotExist, ValueError, TypeError, OverflowError) as error:
        raise ValidationError({"spot": _NO_SUCH_SPOT}) from error


@transaction.atomic
def check_create(
    *,
    user,
    upload: IO[bytes] | bytes,
    spot: Spot | None = None,
    new_spot: dict | None = None,
    body_site: str = Prediction.BodySite.UNKNOWN,
    note: str = "",
    symptoms: Iterable[str] = (),
) -> Prediction:
    """A new check, filed under an existing spot, a new one (`new_spot`: spot_create's fields), or none.
    A rejected photo rolls the new spot back too."""
    if new_spot is not None:
        spot = spot_create(user=user, **new_spot)
    return prediction_create(user=user, upload=upload, body_site=body_site, note=note, spot=spot, symptoms=symptoms)


@transaction.atomic
def prediction_move_to_spot(*, prediction: Prediction, spot: Spot | None) -> Prediction:
    """File a check under another of the owner's spots (or under none)."""
    if spot is not None and spot.user_id != prediction.user_id:
        raise ValidationError({"spot": _NO_SUCH_SPOT})
    prediction.spot = spot
    fields = ["spot"]
    if spot is not None:
        prediction.body_site = spot.region
        fields.append("body_site")
    prediction.save(update_fields=fields)
    return prediction


# --- reminders ------------------------------------------------------------------------------------


def spot_unsubscribe_token(*, spot: Spot) -> str:
    return signing.dumps({"spot": spot.pk, "user": spot.user_id}, salt=UNSUBSCRIBE_SALT)


def spot_unsubscribe(*, token: str) -> Spot:
    """The one-click link in a reminder: turns this spot's reminders off. Needs no login; the signature is the
    proof. Doing it twice is harmless."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature as error:
        raise UnsubscribeError("This unsubscribe link is not valid. Please copy the whole link.") from error
    spot = Spot.objects.filter(pk=data.get("spot"), user_id=data.get("user")).first()
    if spot is None:
        raise UnsubscribeError("This spot no longer exists, so it sends no reminders.")
    Spot.objects.filter(pk=spot.pk).update(recheck_months=Spot.Recheck.OFF)
    spot.recheck_months = Spot.Recheck.OFF
    return spot


def reminders_set_for_account(*, user, on: bool) -> None:
    """The account page's switch: no re-check reminders for any of the user's spots (`on=False`), or reminders
    again as each spot's interval says. Setting it twice is harmless."""
    if on:
        ReminderOptOut.objects.filter(user=user).delete()
    else:
        ReminderOptOut.objects.get_or_create(user=user)


def _reminder_message(*, spot: Spot, due_on: dt.date, email: str) -> EmailMessage:
    unsubscribe = absolute_url("spots:unsubscribe", spot_unsubscribe_token(spot=spot))
    context = {
        "spot": spot,
        "due_on": due_on,
        "spot_link": absolute_url("spots:spot_detail", spot.pk),
        "unsubscribe_link": unsubscribe,
        "account_link": absolute_url("accounts:account"),
    }
    return EmailMessage(
        subject=f"Time to re-check your spot: {spot.name}",
        body=render_to_string("spots/email/reminder.txt", context),
        to=[email],
        # RFC 8058 one-click unsubscribe: mail clients show an "Unsubscribe" button that POSTs to the link.
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )


def spot_reminder_claim(*, spot: Spot, due_on: dt.date) -> bool:
    """Claim the reminder for this due date in one UPDATE: only one worker (or beat run) ever wins it."""
    from django.db.models import Q

    return (
        Spot.objects.filter(pk=spot.pk)
        .filter(Q(reminded_for__isnull=True) | Q(reminded_for__lt=due_on))
        .update(reminded_for=due_on, reminded_at=timezone.now())
        == 1
    )


def spot_reminders_send_due(*, today: dt.date | None = None) -> list[int]:
    """Send one e-mail per spot that is due for a re-check; returns the ids of the spots reminded.

    Idempotent: each spot is claimed for its due date before the e-mail goes, so a second worker, a redelivered
    message or a restarted beat sends nothing twice. A failed send gives the claim back (the next run retries).
    """
    today = today or timezone.localdate()
    sent: list[int] = []
    for spot, due_on in spots_due_for_reminder(today=today):
        previous = (spot.reminded_for, spot.reminded_at)
        if not spot_reminder_claim(spot=spot, due_on=due_on):
            continue
        try:
            _reminder_message(spot=spot, due_on=due_on, email=spot.user.email).send()
        except Exception:  # noqa: BLE001 - SMTP errors vary by backend; give the claim back and go on
            logger.exception("Could not send the re-check reminder for spot %s", spot.pk)
            Spot.objects.filter(pk=spot.pk, reminded_for=due_on).update(
                reminded_for=previous[0], reminded_at=previous[1]
            )
            continue
        sent.append(spot.pk)
    if sent:
        logger.info("Sent %d re-check reminder(s)", len(sent))
    return sent
