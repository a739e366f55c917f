import os

from django.core.wsgi import get_wsgi_application

from melanoma_site.request_body import RequestBodyGuard

# Only a deployment's web server imports this module, so production is its default (as in cookiecutter-django);
# `make run` and the test harness set DJANGO_SETTINGS_MODULE explicitly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_site.settings.production")
# A body timeout, and chunked bodies read within the upload limit, before Django sees the request.
application = RequestBodyGuard(get_wsgi_application())
