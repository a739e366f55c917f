"""`python -m tests.classifier.production_headers`: what a production process answers, as one JSON line.

Run in a subprocess by test_security.py with DJANGO_SETTINGS_MODULE=melanoma_site.settings.production, so that
the settings are read the way a deployment reads them (the test process itself runs development settings).
"""

import json

import django


def main() -> None:
    django.setup()
    from django.conf import settings
    from django.test import Client

    client = Client(HTTP_HOST="melanoma.example.org")
    https = client.get("/api/predictions/", secure=True)
    plain = client.get("/api/predictions/")
    healthz_plain = client.get("/healthz")
    seen = {
        "debug": settings.DEBUG,
        "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
        "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
        "session_cookie_httponly": settings.SESSION_COOKIE_HTTPONLY,
        "https_status": https.status_code,
        "https_headers": dict(https.headers),
        "plain_status": plain.status_code,
        "plain_location": plain.get("Location", ""),
        "healthz_plain_status": healthz_plain.status_code,
    }
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
