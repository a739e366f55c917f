"""Which e-mail address a person has confirmed. Reminders and review e-mails go only to a confirmed address."""

from django.conf import settings
from django.db import models


class VerifiedEmail(models.Model):
    """The address the user proved they read (by opening the confirmation link). It counts only while it is
    still `user.email`: changing the address needs a new confirmation."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="verified_email")
    email = models.EmailField()
    verified_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.email
