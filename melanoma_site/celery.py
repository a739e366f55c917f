"""The Celery app. Configuration lives in Django settings under the CELERY_ namespace."""

import os

from celery import Celery

# Development unless told otherwise; a deployment sets DJANGO_SETTINGS_MODULE=melanoma_site.settings.production.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_site.settings.development")

app = Celery("melanoma_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
