"""Production: DJANGO_SETTINGS_MODULE=melanoma_site.settings.production for every process (web, worker, beat,
manage.py). It refuses to start without DJANGO_SECRET_KEY, and `manage.py check --deploy` reports nothing."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env_bool, env_int, env_str

DEBUG = False
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. Production settings (melanoma_site.settings.production) need one; "
        "development settings (the default of manage.py) do not."
    )

# --- HTTPS: on by default; each can be turned off for plain HTTP on loopback (bench, the fault scripts) -------
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Load balancers and uptime probes speak plain HTTP to the app; a 301 would read as "up" to one that counts 3xx
# as success, and hide a 503. /healthz shows no private data (details need staff or a token).
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
