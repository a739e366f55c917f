"""API tokens: several per person (one per integration), each with an optional expiry, listed and revoked
through /api/token/. Only a digest of the secret is stored: a leaked database does not hand out API access."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    # SHA-256 of the secret, hex. The secret is random (256 bits), so a plain digest is enough: no salt or
    # slow hash is needed to stop guessing, and a lookup by digest stays one indexed query.
    key_digest = models.CharField(max_length=64, unique=True)
    # The secret's first characters, to tell tokens apart in a listing without revealing them.
    prefix = models.CharField(max_length=8)
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
