"""A spot: one mole or mark a person follows over time, with its place on the body map and a re-check interval.

Checks (classifier.Prediction) point here through `Prediction.spot` (nullable, SET_NULL): deleting a spot goes
through spots.services.spot_delete, which asks first and deletes its checks with their photo files. At the
database level the link only goes NULL, so that no row delete can ever drop a photo row while leaving its file
on disk unnoticed (a CASCADE would do exactly that).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from spots import body_map


class Spot(models.Model):
    class View(models.TextChoices):
        FRONT = body_map.VIEW_FRONT, "Front"
        BACK = body_map.VIEW_BACK, "Back"

    class Recheck(models.IntegerChoices):
        OFF = 0, "No reminder"
        ONE_MONTH = 1, "Every month"
        THREE_MONTHS = 3, "Every 3 months"
        SIX_MONTHS = 6, "Every 6 months"

    NAME_MAX_LENGTH = 80
    NOTE_MAX_LENGTH = 2000

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="spots")
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    view = models.CharField(max_length=8, choices=View.choices, default=View.FRONT)
    x = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)], default=0.5)
    y = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)], default=0.5)
    # Derived from view/x/y by the services (spots.body_map.region_for); a Prediction.BodySite value.
    region = models.CharField(max_length=32, default="unknown")
    note = models.TextField(blank=True, max_length=NOTE_MAX_LENGTH)
    recheck_months = models.PositiveSmallIntegerField(choices=Recheck.choices, default=Recheck.OFF)
    # The due date a reminder was last sent for: the periodic task claims a spot by moving this forward in one
    # UPDATE, so a second worker or a restarted beat finds nothing left to send.
    reminded_for = models.DateField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["user", "name"], name="spot_user_name")]

    def __str__(self) -> str:
        return self.name


class ReminderOptOut(models.Model):
    """The account-wide "no re-check reminders" switch (the account page): while it exists, no spot of this user
    is reminded, whatever its interval. The intervals stay, so turning reminders back on restores them."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminder_opt_out")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"no reminders for user {self.user_id}"
