"""Forms for the pages. They only collect and shape input: checking the image itself is the service's job."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

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
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_body_site(self) -> str:
        return self.cleaned_data.get("body_site") or Prediction.BodySite.UNKNOWN


class SignUpForm(UserCreationForm):
    email = forms.EmailField(
        label="E-mail (optional)",
        required=False,
        help_text="Only used to reset your password if you forget it.",
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


class AccountDeleteForm(forms.Form):
    """Asks for the password again: deleting an account deletes every photo and result, and cannot be undone."""

    password = forms.CharField(label="Your password", strip=False, widget=forms.PasswordInput)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your current password.")
        return password
