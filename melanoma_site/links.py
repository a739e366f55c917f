"""Absolute links for e-mails (sent from requests and from Celery, where there is no request to ask)."""

from django.conf import settings
from django.urls import reverse


def absolute_url(viewname: str, *args) -> str:
    return settings.MELANOMA_SITE_URL.rstrip("/") + reverse(viewname, args=args)
