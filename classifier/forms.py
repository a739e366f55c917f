"""Forms for the prediction pages (the account forms are in accounts/forms.py). They only collect and shape
input: checking the image itself is the service's job."""

from django import forms

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
        help_text="E.g. 'has grown since spring'. Seen by you and this service's clinicians.",
        max_length=Prediction.NOTE_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_body_site(self) -> str:
        return self.cleaned_data.get("body_site") or Prediction.BodySite.UNKNOWN
