"""Reads for accounts."""

from accounts.models import VerifiedEmail


def user_verified_email(*, user) -> str | None:
    """The user's e-mail address if they confirmed it, else None (nothing is sent to an unconfirmed one)."""
    email = (getattr(user, "email", "") or "").strip()
    if not email:
        return None
    confirmed = VerifiedEmail.objects.filter(user=user, email__iexact=email).exists()
    return email if confirmed else None
