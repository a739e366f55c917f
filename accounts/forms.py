"""Sign-up and account deletion forms; the other auth pages use django.contrib.auth's forms."""

from typing import TYPE_CHECKING

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AdminUserCreationForm, UserCreationForm

from accounts.usernames import validate_username_not_confusable

if TYPE_CHECKING:
    _UserForm = forms.ModelForm
else:
    _UserForm = object  # a mixin at run time; typed as the ModelForm it is mixed into


class NotConfusableUsernameMixin(_UserForm):
    """Refuses a username that mixes alphabets or looks like an existing one (accounts/usernames.py)."""

    def clean_username(self) -> str:
        username = super().clean_username()  # type: ignore[misc]  # the user-creation form's own check
        if username:  # None: Django's own check already refused it (the same name in another case)
            validate_username_not_confusable(username, exclude_pk=self.instance.pk)
        return username


class SignUpForm(NotConfusableUsernameMixin, UserCreationForm):
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


class AdminAddUserForm(NotConfusableUsernameMixin, AdminUserCreationForm):
    """The admin's "add user" form, with the same username rule as sign-up."""


class EmailChangeForm(forms.Form):
    email = forms.EmailField(
        label="New e-mail address",
        help_text="We send a confirmation link there; the address counts once you open it.",
    )
