"""Forms for the prediction pages (the account forms are in accounts/forms.py). They only collect and shape
input: checking the image itself is the service's job."""

from django import forms

from classifier.images import max_upload_bytes, too_large_message
from classifier.models import Prediction


class UploadForm(forms.Form):
    image = forms.FileField(
        label="Photo of the skin lesion",
        help_text="JPEG, PNG or HEIC from your phone. Take it close up, in good light, in focus.",
        # accept="image/*" makes phones offer the camera as well as the photo library.
        widget=forms.ClearableFileInput(attrs={"accept": "image/*"}),
    )
    body_site = forms.ChoiceField(
        label="Where on the body is it? (optional)",
        choices=Prediction.BodySite.choices,
        initial=Prediction.BodySite.UNKNOWN,
        required=False,
    )
    note = forms.CharField(
        label="Note (optional)",
        help_text="For yourself, e.g. 'has grown since spring'. Only you can see it.",
        max_length=Prediction.NOTE_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The page's script checks the size before sending, so that a too-large photo is never uploaded and
        # the note and body site typed so far stay in the form.
        self.fields["image"].widget.attrs.update(
            {"data-max-bytes": str(max_upload_bytes()), "data-too-large-message": too_large_message()}
        )

    @classmethod
    def too_large(cls, message: str, data=None) -> "UploadForm":
        """A form whose photo was refused for its size before it was read (other input kept where it arrived)."""
        form = cls(data if data is not None else {}, {})
        form.full_clean()
        form.errors.pop("image", None)
        form.add_error("image", message)
        return form

    def clean_body_site(self) -> str:
        return self.cleaned_data.get("body_site") or Prediction.BodySite.UNKNOWN
