"""Development: the default for manage.py, Celery, pytest and `make run`. Nothing has to be exported."""

from .base import *  # noqa: F403
from .base import STORAGES, env_list, env_str

DEBUG = True
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "django-insecure-development-only-key-do-not-use-in-production")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
# No manifest to build first: pages load straight after a checkout, without collectstatic.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
