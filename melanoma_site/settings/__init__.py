"""Settings, chosen with DJANGO_SETTINGS_MODULE as in cookiecutter-django.

- `melanoma_site.settings.development`: the default of manage.py, Celery, pytest and `make run`; DEBUG on,
  a development-only secret key, plain HTTP on localhost.
- `melanoma_site.settings.production`: chosen explicitly (and the default of wsgi.py, the entry point only a
  deployment uses); DEBUG off, refuses to start without DJANGO_SECRET_KEY, HTTPS and HSTS on.
"""
