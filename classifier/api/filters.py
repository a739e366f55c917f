"""Query parameters of the prediction list: filters, and a stable order.

Filters that depend on fields other features add (`risk_level`, `spot`) appear once those fields exist on
Prediction, so the API and its schema never offer a parameter that does nothing.
"""

from __future__ import annotations

import django_filters
from django.core.exceptions import FieldDoesNotExist
from django.db.models import QuerySet

from classifier.models import Prediction


def _has_field(name: str) -> bool:
    try:
        Prediction._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


class PredictionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Prediction.Status.choices)
    verdict = django_filters.ChoiceFilter(choices=Prediction.Verdict.choices)
    body_site = django_filters.ChoiceFilter(choices=Prediction.BodySite.choices)
    if _has_field("risk_level"):
        risk_level = django_filters.ChoiceFilter(choices=Prediction._meta.get_field("risk_level").choices)
    if _has_field("spot"):
        # A plain number, not a choice of the person's spots: another person's id simply matches nothing.
        # Bounded: an id beyond a 64-bit integer (schemathesis sent -5.5e157) is a 400, not the database's overflow.
        spot = django_filters.NumberFilter(
            field_name="spot_id",
            min_value=1,
            max_value=2**63 - 1,
            help_text="Only the checks of this spot (its id).",
        )
    # ?created_after=2026-01-01&created_before=2026-01-31: days (UTC), both included.
    created_after = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__gte", help_text="Only checks made on or after this day."
    )
    created_before = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__lte", help_text="Only checks made on or before this day."
    )
    ordering = django_filters.ChoiceFilter(
        choices=[("-created_at", "newest first (default)"), ("created_at", "oldest first")],
        method="order",
        help_text="Sort order; ties are broken by id, so pages never repeat or skip a row.",
    )

    class Meta:
        model = Prediction
        fields: list[str] = []

    def order(self, queryset: QuerySet[Prediction], name: str, value: str) -> QuerySet[Prediction]:
        tie_breaker = "id" if value == "created_at" else "-id"
        return queryset.order_by(value, tie_breaker)
