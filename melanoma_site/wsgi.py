import os

from django.core.wsgi import get_wsgi_application

# Only a deployment's web server imports this module, so production is its default (as in cookiecutter-django);
# `make run` and the test harness set DJANGO_SETTINGS_MODULE explicitly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_site.settings.production")

application = get_wsgi_application()
