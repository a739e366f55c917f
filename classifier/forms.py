"""Forms for the prediction pages (the account forms are in accounts/forms.py). They only collect and shape
input: checking the image itself is the service's job."""

from typing import Any, cast

from django import forms

from classifier.images import max_upload_bytes, too_large_message
from classifier.models import Prediction
from spots.forms import NEW_SPOT, BodyMapFields, body_site_fallback_field, symptom_fields
from spots.models import Spot


class UploadForm(BodyMapFields):
    image = forms.FileField(
        label="Photo of the skin lesion",
        help_text="JPEG, PNG or HEIC from your phone. Take it close up, in good light, in focus.",
        # accept="image/*" makes phones offer the camera as well as the photo library.
        widget=forms.ClearableFileInput(attrs={"accept": "image/*"}),
    )
    spot = forms.ChoiceField(
        label="Which spot is this?",
        required=False,
        help_text="File it under a spot to follow it over time and compare photos.",
    )
    new_spot_name = forms.CharField(
        label="Name of the new spot",
        max_length=Spot.NAME_MAX_LENGTH,
        required=False,
        help_text="e.g. 'mole left shoulder'",
    )
    # The body map replaces this dropdown; it is shown and sent only where the map's script does not run.
    body_site = body_site_fallback_field("Where on the body is it? (optional)")
    note = forms.CharField(
        label="Note (optional)",
        help_text="E.g. 'has grown since spring'. Seen by you and this service's clinicians.",
        max_length=Prediction.NOTE_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields.update(symptom_fields())
        spots = Spot.objects.filter(user=user).order_by("name").values_list("pk", "name") if user else []
        # self.fields holds copies of the declared fields, typed as plain Fields by django-stubs.
        cast(forms.ChoiceField, self.fields["spot"]).choices = [
            ("", "Not filed under a spot"),
            (NEW_SPOT, "A new spot (place it on the body map)"),
            *[(str(pk), name) for pk, name in spots],
        ]
        # The page's script checks the size before sending, so that a too-large photo is never uploaded and
        # the note and body site typed so far stay in the form.
        self.fields["image"].widget.attrs.update(
            {"data-max-bytes": str(max_upload_bytes()), "data-too-large-message": too_large_message()}
        )

    @classmethod
    def too_large(cls, message: str, data=None, *, user=None) -> "UploadForm":
        """A form whose photo was refused for its size before it was read (other input kept where it arrived)."""
        form = cls(data if data is not None else {}, {}, user=user)
        form.full_clean()
        form.errors.pop("image", None)
        form.add_error("image", message)
        return form

    def clean_body_site(self) -> str:
        return self.cleaned_data.get("body_site") or Prediction.BodySite.UNKNOWN

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("spot") == NEW_SPOT:
            self.place_from_region(cleaned.get("body_site"))
            if not (cleaned.get("new_spot_name") or "").strip():
                self.add_error("new_spot_name", "Give the new spot a name, e.g. 'mole left shoulder'.")
            if not self.placed():
                self.add_error(None, "Tap the body map to show where the new spot is.")
        return cleaned

    def symptoms(self) -> list[str]:
        return [name for name in Prediction.SYMPTOM_FIELDS if self.cleaned_data.get(name)]
