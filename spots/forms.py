"""Forms for spots and for filing a check under one. They only collect input; the services check it."""

from __future__ import annotations

import contextlib
from typing import cast

from django import forms

from classifier.models import Prediction
from spots import body_map
from spots.models import Spot

NEW_SPOT = "new"


class BodyMapFields(forms.Form):
    """Where the spot is: filled by tapping the body map (static/js/body_map.js)."""

    view = forms.ChoiceField(
        choices=Spot.View.choices, initial=Spot.View.FRONT, required=False, widget=forms.HiddenInput
    )
    x = forms.FloatField(min_value=0.0, max_value=1.0, required=False, widget=forms.HiddenInput)
    y = forms.FloatField(min_value=0.0, max_value=1.0, required=False, widget=forms.HiddenInput)

    def clean_view(self) -> str:
        return self.cleaned_data.get("view") or Spot.View.FRONT

    def placed(self) -> bool:
        return self.cleaned_data.get("x") is not None and self.cleaned_data.get("y") is not None

    def place_from_region(self, region: str | None) -> None:
        """The no-JavaScript fallback: the body-area dropdown (shown and sent only when the map's script does not
        run; static/js/body_map.js disables it) places the spot at a point inside that area, unless the point
        already sent lies in it."""
        point = body_map.point_for_region(region or "")
        if point is None:
            return
        if self.placed():
            sent = {name: self.cleaned_data[name] for name in ("view", "x", "y")}
            with contextlib.suppress(ValueError):
                if body_map.region_for(**sent) == region:
                    return
        self.cleaned_data.update(dict(zip(("view", "x", "y"), point, strict=True)))


def body_site_fallback_field(label: str) -> forms.ChoiceField:
    """The body-area dropdown: the map replaces it; it stays for browsers without JavaScript."""
    return forms.ChoiceField(
        label=label,
        choices=Prediction.BodySite.choices,
        initial=Prediction.BodySite.UNKNOWN,
        required=False,
        widget=forms.Select(attrs={"data-no-js-fallback": ""}),
    )


class SpotForm(BodyMapFields):
    name = forms.CharField(
        label="Name",
        max_length=Spot.NAME_MAX_LENGTH,
        help_text="So you recognise it, e.g. 'mole left shoulder'.",
    )
    note = forms.CharField(
        label="Note (optional)",
        max_length=Spot.NOTE_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    recheck_months = forms.TypedChoiceField(
        label="Re-check reminder",
        choices=Spot.Recheck.choices,
        coerce=int,
        initial=Spot.Recheck.OFF,
        help_text="An e-mail when it is time to photograph it again (to a confirmed address).",
    )
    body_site = body_site_fallback_field("Where on the body is it?")
    field_order = ("name", "note", "recheck_months", "view", "x", "y")

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            self.place_from_region(self.cleaned_data.get("body_site"))
            if not self.placed():
                raise forms.ValidationError("Tap the body map to show where the spot is.")
        return cleaned

    def spot_fields(self) -> dict:
        """What spot_create / spot_update take (the dropdown only helped to place it)."""
        return {name: value for name, value in self.cleaned_data.items() if name != "body_site"}


class MoveCheckForm(forms.Form):
    spot = forms.ChoiceField(label="File this check under", required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        spots = Spot.objects.filter(user=user).order_by("name").values_list("pk", "name")
        choices = [("", "No spot"), *[(str(pk), name) for pk, name in spots]]
        # self.fields holds copies of the declared fields, typed as plain Fields by django-stubs.
        cast(forms.ChoiceField, self.fields["spot"]).choices = choices


def symptom_fields() -> dict[str, forms.BooleanField]:
    return {
        name: forms.BooleanField(label=Prediction.symptom_label(name).capitalize(), required=False)
        for name in Prediction.SYMPTOM_FIELDS
    }
