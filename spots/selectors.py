"""Reads for spots: a person's spots with their latest check, one spot's timeline, change flags, due dates."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from classifier.models import Prediction
from classifier.risk import risk_rank
from spots.models import ReminderOptOut, Spot

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # a dev dependency: for the type checker only


class SpotAnnotations(TypedDict):
    """What spot_list_for_user adds to each spot."""

    check_count: int
    latest_check_id: int | None
    latest_check_at: dt.datetime | None


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _latest_check(field: str) -> Subquery:
    latest = Prediction.objects.filter(spot=OuterRef("pk")).order_by("-created_at", "-id")
    return Subquery(latest.values(field)[:1])


def spot_list_for_user(*, user) -> QuerySet[WithAnnotations[Spot, SpotAnnotations]]:
    """The user's spots, each annotated with its number of checks and its latest check's id and date."""
    return (
        Spot.objects.filter(user=user)
        .annotate(
            check_count=Count("predictions"),
            latest_check_id=_latest_check("id"),
            latest_check_at=_latest_check("created_at"),
        )
        .order_by("name", "id")
    )


def spot_get_for_user(*, user, pk) -> WithAnnotations[Spot, SpotAnnotations]:
    """One of the user's own spots, else Http404 (for another user's spot too: ids cannot be probed). Spots are
    personal: staff read checks in the admin, not here."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("Spot not found.")
    try:
        return spot_list_for_user(user=user).get(pk=pk)
    except (Spot.DoesNotExist, ValueError, TypeError, OverflowError) as error:
        raise Http404("Spot not found.") from error


def spot_checks(*, spot: Spot) -> list[Prediction]:
    """The spot's checks, newest first."""
    return list(spot.predictions.select_related("model_version").order_by("-created_at", "-id"))


def spot_due_on(*, spot: Spot, latest_check_at: dt.datetime | None = None) -> dt.date | None:
    """When the spot is due for a re-check: its interval after the latest check (or after it was created, if it
    has no check yet); once reminded for that date without a new check, one interval after the reminder's date.
    None when reminders are off."""
    if not spot.recheck_months:
        return None
    if latest_check_at is None:
        latest_check_at = getattr(spot, "latest_check_at", None)
    base = latest_check_at or spot.created_at
    due_on = add_months(timezone.localdate(base), spot.recheck_months)
    if spot.reminded_for is not None and spot.reminded_for >= due_on:
        due_on = add_months(spot.reminded_for, spot.recheck_months)
    return due_on


@dataclass(frozen=True)
class TimelineEntry:
    check: Prediction
    changed: bool  # its risk is higher than the check before it, or the person ticked a change
    risk_went_up: bool


def spot_timeline(*, checks: list[Prediction]) -> list[TimelineEntry]:
    """Checks newest first, each with its change flag (compared with the previous finished check in time)."""
    entries: list[TimelineEntry] = []
    previous_rank: int | None = None
    for check in sorted(checks, key=lambda c: (c.created_at, c.pk)):
        rank = risk_rank(check) if check.status == Prediction.Status.DONE else None
        went_up = rank is not None and previous_rank is not None and rank > previous_rank
        entries.append(TimelineEntry(check=check, changed=went_up or bool(check.symptoms), risk_went_up=went_up))
        if rank is not None:
            previous_rank = rank
    return entries[::-1]


def predictions_unfiled_for_user(*, user) -> QuerySet[Prediction]:
    """The user's checks not filed under a spot, newest first."""
    return (
        Prediction.objects.filter(user=user, spot__isnull=True)
        .select_related("model_version")
        .order_by("-created_at", "-id")
    )


def spots_due_for_reminder(*, today: dt.date) -> list[tuple[Spot, dt.date]]:
    """Spots with reminders on whose due date has come and that were not yet reminded for it, for users with a
    confirmed e-mail address that is still theirs and who have not turned reminders off for their account."""
    from django.db.models import F

    candidates = (
        spot_list_for_user_any()
        .filter(recheck_months__gt=0, user__is_active=True, user__verified_email__isnull=False)
        .filter(user__reminder_opt_out__isnull=True)  # the account-wide switch is off
        .filter(user__verified_email__email__iexact=F("user__email"))
        .select_related("user")
    )
    due: list[tuple[Spot, dt.date]] = []
    for spot in candidates:
        due_on = spot_due_on(spot=spot)
        if due_on is not None and due_on <= today and (spot.reminded_for is None or spot.reminded_for < due_on):
            due.append((spot, due_on))
    return due


def spot_list_for_user_any() -> QuerySet[Spot]:
    """Every spot with the same annotations as spot_list_for_user (for the reminder task)."""
    return Spot.objects.annotate(latest_check_at=_latest_check("created_at"))


def reminders_off_for_account(*, user) -> bool:
    """Whether the user turned re-check reminders off for all their spots (the account page's switch)."""
    return ReminderOptOut.objects.filter(user=user).exists()
