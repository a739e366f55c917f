"""Settings every environment shares, read once from the environment.

Not used directly: `development` (the default for manage.py, Celery and pytest) and `production` (chosen
explicitly with DJANGO_SETTINGS_MODULE=melanoma_site.settings.production) build on it. Development defaults
are embedded (SQLite under var/, a local Redis that `make run` starts when REDIS_URL is unset).
"""

from pathlib import Path

import dj_database_url

from ..env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("MELANOMA_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = False

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# --- Browser hardening in every environment (HTTPS, HSTS and secure cookies: settings/production.py) --------
# Behind a TLS-terminating proxy set DJANGO_SECURE_PROXY_SSL_HEADER=1 so that Django trusts X-Forwarded-Proto.
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"  # result-page URLs (with ids) never reach other sites
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# melanoma_site/security.py; the default allows only this site's own scripts, styles and images.
CONTENT_SECURITY_POLICY_REPORT_ONLY = env_bool("DJANGO_CSP_REPORT_ONLY", default=False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "accounts",
    "classifier",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "melanoma_site.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise (static files keep their cache lifetime); outside the rest, so that every page, error and
    # API answer is no-store.
    "melanoma_site.security.NoStoreMiddleware",
    # Before anything reads the body (sessions, CSRF): an oversized upload gets a 413 without being read.
    "classifier.uploads.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that it sees the authenticated user and can lock out repeated failed logins.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "melanoma_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "melanoma_site.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web workers and Celery processes share one SQLite file: WAL lets reads go on during a write, and
    # IMMEDIATE transactions queue for the write lock instead of failing with "database is locked" halfway.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    )
    # A fresh clone has no var/ yet: SQLite creates the file but not its folder ("unable to open database file").
    # Owner-only (0700), like the photos: the database holds notes and results.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "classifier:upload"
LOGOUT_REDIRECT_URL = "landing"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    # Uploaded lesion photos: private, under VAR_DIR, never given a public URL (see classifier/storage.py).
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(env_str("MELANOMA_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = None  # no public media URL: images go through an ownership-checking view
# Photos are readable by the application's user only (files 0600, folders 0700), whatever the process umask:
# another account on the server must not read a patient's photo.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "melanoma-screening@localhost")

# --- Redis, Celery, cache -------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True  # state lives on the Prediction row; no result backend
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# One queue per deployment (tests use their own so that concurrent runs never take each other's messages).
CELERY_TASK_DEFAULT_QUEUE = env_str("MELANOMA_CELERY_QUEUE", "melanoma")
# A message is acknowledged only after its task finished; if the worker dies it is delivered again, and the
# atomic claim in prediction_run makes that harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a slow photo must not hold other people's messages hostage
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3  # seconds; an upload must not hang on a dead broker
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Unacknowledged messages come back after this long (Redis has no per-consumer lease); above the hard limit.
    "visibility_timeout": env_int("MELANOMA_VISIBILITY_TIMEOUT_S", 600),
    # kombu scans for such messages only every interval x throttle seconds (10 x 10 by default, so a message
    # of a SIGKILLed worker came back up to 100 s late); scan every 10 s: one cheap ZRANGE per worker.
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": 3,
    "socket_timeout": 10,
    "retry_on_timeout": True,
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
MELANOMA_TASK_SOFT_TIME_LIMIT_S = env_int("MELANOMA_TASK_SOFT_TIME_LIMIT_S", 60)
MELANOMA_TASK_TIME_LIMIT_S = env_int("MELANOMA_TASK_TIME_LIMIT_S", 90)
# The sweep re-queues `queued` rows older than this (their message was lost: broker down at upload time).
MELANOMA_SWEEP_QUEUED_AFTER_S = env_int("MELANOMA_SWEEP_QUEUED_AFTER_S", 60)
CELERY_BEAT_SCHEDULE = {
    "predictions-sweep": {
        "task": "classifier.predictions_sweep",
        "schedule": float(env_int("MELANOMA_SWEEP_EVERY_S", 30)),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("CACHE_URL", REDIS_URL),
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "melanoma"),
        # The cache only holds counters (upload rate); a dead Redis must cost a request seconds, not minutes.
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

# --- Product settings -----------------------------------------------------------------------------
MELANOMA_MAX_UPLOAD_BYTES = env_int("MELANOMA_MAX_UPLOAD_MB", 20) * 1024 * 1024
# Per-user uploads per minute, one counter shared by the upload page and the API (classifier/ratelimit.py).
MELANOMA_UPLOAD_RATE_PER_MINUTE = env_int("MELANOMA_UPLOAD_RATE_PER_MINUTE", 30)
MELANOMA_UPLOAD_RATE = f"{MELANOMA_UPLOAD_RATE_PER_MINUTE}/minute"
MELANOMA_MAX_IMAGE_PIXELS = env_int("MELANOMA_MAX_IMAGE_MEGAPIXELS", 64) * 1_000_000
MELANOMA_STORED_IMAGE_MAX_SIDE = env_int("MELANOMA_STORED_IMAGE_MAX_SIDE", 1536)
# /healthz shows error details (hosts, paths, versions) to staff and to probes sending `Authorization: Bearer
# <token>`; unset, only staff see them. Everyone else gets ok/unavailable per component.
MELANOMA_HEALTHZ_TOKEN = env_str("MELANOMA_HEALTHZ_TOKEN", "")
# A request body over the upload limit (plus room for the form fields) is refused before it is read.
FILE_UPLOAD_HANDLERS = [
    "classifier.uploads.MaxSizeUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Models shipped with the repository (the default one) and trained locally.
MELANOMA_MODELS_DIR = Path(env_str("MELANOMA_MODELS_DIR", str(BASE_DIR / "models")))
MELANOMA_TRAINED_MODELS_DIR = Path(env_str("MELANOMA_TRAINED_MODELS_DIR", str(VAR_DIR / "models")))

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "classifier.api.exceptions.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Melanoma screening API",
    "DESCRIPTION": "Upload a skin-lesion photo and read a melanoma risk estimate. A screening aid, not a diagnosis.",
    "VERSION": "1.0.0",
    # Request and response shapes as separate components: otherwise the upload's `image` is documented as the
    # response's URI string instead of a binary file part (found by tests/classifier/test_api_schemathesis.py).
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Login throttling (django-axes) ---------------------------------------------------------------
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"  # a readable page (status 429), not plain text

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
