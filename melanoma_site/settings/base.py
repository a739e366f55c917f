"""Settings every environment shares, read once from the environment.

Not used directly: `development` (the default for manage.py, Celery and pytest) and `production` (chosen
explicitly with DJANGO_SETTINGS_MODULE=melanoma_site.settings.production) build on it. Development defaults
are embedded (SQLite under var/, a local Redis that `make run` starts when REDIS_URL is unset).
"""

from pathlib import Path

import dj_database_url
from kombu import Queue

from ..env import env_bool, env_int, env_list, env_str
from ..storage_url import storage_from_url, storage_is_s3

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
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as static files: /api/docs/ works offline, no CDN
    "axes",
    "accounts",
    "api_tokens",
    "classifier",
    "audit",
    "spots",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "melanoma_site.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise (static files keep their cache lifetime); outside the rest, so that every page, error and
    # API answer is no-store.
    "melanoma_site.security.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Before anything reads the body (CSRF does, in process_view) but after the middleware that only reads
    # cookies: an oversized upload gets a 413 without being read, on a page that knows who is signed in.
    "classifier.uploads.RequestSizeLimitMiddleware",
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
    # Lesion photos, thumbnails and (with S3) model artifacts: private, never given a public URL; served only by
    # the ownership-checking views (classifier/private_files.py). STORAGE_URL unset: files under MEDIA_ROOT;
    # s3://KEY:SECRET@host:port/bucket?secure=0: an S3 bucket (melanoma_site/storage_url.py).
    "default": storage_from_url(env_str("STORAGE_URL")),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MELANOMA_OBJECT_STORAGE = storage_is_s3(STORAGES)
MEDIA_ROOT = Path(env_str("MELANOMA_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = None  # no public media URL: images go through an ownership-checking view
# Photos are readable by the application's user only (files 0600, folders 0700), whatever the process umask:
# another account on the server must not read a patient's photo.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
# For django.core.mail.backends.filebased.EmailBackend (one file per connection): the folder of the messages.
# The real-worker reminder test reads what a worker process sent from there.
EMAIL_FILE_PATH = env_str("DJANGO_EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "melanoma-screening@localhost")
# The site's public address, for links in e-mails (confirmation, reminders, unsubscribe).
MELANOMA_SITE_URL = env_str("MELANOMA_SITE_URL", "http://127.0.0.1:8000")
# How long an e-mail confirmation link works.
MELANOMA_EMAIL_CONFIRM_MAX_AGE_S = env_int("MELANOMA_EMAIL_CONFIRM_MAX_AGE_S", 3 * 24 * 3600)

# --- Redis, Celery, cache -------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

# Redis is the embedded default broker and always the cache; RabbitMQ (amqp://user:pass@host:5672/vhost) is the
# production broker: it keeps an unacknowledged message per consumer and gives it back the moment that
# worker's connection drops, and persists queued messages across its own restart.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
MELANOMA_BROKER_IS_REDIS = CELERY_BROKER_URL.startswith(("redis://", "rediss://", "unix://"))
# kombu's Redis transport with the fix that keeps a worker alive when Redis goes away mid-task (issue 11.1).
if CELERY_BROKER_URL.startswith("redis://"):
    CELERY_BROKER_TRANSPORT = "melanoma_site.celery_transport:Transport"
CELERY_TASK_IGNORE_RESULT = True  # state lives on the Prediction row; no result backend
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# Two queues per deployment (tests use their own names so that concurrent runs never take each other's messages):
# inference, and housekeeping (the sweep, e-mails, reports) so that housekeeping never delays a verdict. A
# worker consumes both unless started with `-Q NAME`.
MELANOMA_INFERENCE_QUEUE = env_str("MELANOMA_CELERY_QUEUE", "melanoma")
MELANOMA_HOUSEKEEPING_QUEUE = env_str("MELANOMA_HOUSEKEEPING_QUEUE", f"{MELANOMA_INFERENCE_QUEUE}.housekeeping")
CELERY_TASK_DEFAULT_QUEUE = MELANOMA_INFERENCE_QUEUE
CELERY_TASK_QUEUES = (
    Queue(MELANOMA_INFERENCE_QUEUE, routing_key=MELANOMA_INFERENCE_QUEUE),
    Queue(MELANOMA_HOUSEKEEPING_QUEUE, routing_key=MELANOMA_HOUSEKEEPING_QUEUE),
)
# Everything not listed goes to the inference queue (the default).
MELANOMA_HOUSEKEEPING_TASKS = (
    "classifier.predictions_sweep",
    "classifier.media_orphans_cleanup",
    "spots.reminders_send_due",
)
CELERY_TASK_ROUTES = {
    name: {"queue": MELANOMA_HOUSEKEEPING_QUEUE, "routing_key": MELANOMA_HOUSEKEEPING_QUEUE}
    for name in MELANOMA_HOUSEKEEPING_TASKS
}
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
if not MELANOMA_BROKER_IS_REDIS:
    # RabbitMQ needs none of these: it holds each unacked message for its consumer's connection.
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
MELANOMA_TASK_SOFT_TIME_LIMIT_S = env_int("MELANOMA_TASK_SOFT_TIME_LIMIT_S", 60)
MELANOMA_TASK_TIME_LIMIT_S = env_int("MELANOMA_TASK_TIME_LIMIT_S", 90)
# The sweep re-queues `queued` rows older than this (their message was lost: broker down at upload time).
MELANOMA_SWEEP_QUEUED_AFTER_S = env_int("MELANOMA_SWEEP_QUEUED_AFTER_S", 60)
# Stored photos with no row (a web process killed mid-upload) are deleted once older than this.
MELANOMA_ORPHAN_FILES_AFTER_S = env_int("MELANOMA_ORPHAN_FILES_AFTER_S", 3600)
CELERY_BEAT_SCHEDULE = {
    "predictions-sweep": {
        "task": "classifier.predictions_sweep",
        "schedule": float(env_int("MELANOMA_SWEEP_EVERY_S", 30)),
    },
    # One e-mail per spot that is due for a re-check (spots.services.spot_reminders_send_due: idempotent).
    "spots-reminders": {
        "task": "spots.reminders_send_due",
        "schedule": float(env_int("MELANOMA_REMINDERS_EVERY_S", 3600)),
    },
    "media-orphans-cleanup": {
        "task": "classifier.media_orphans_cleanup",
        "schedule": float(env_int("MELANOMA_ORPHAN_CLEANUP_EVERY_S", 3600)),
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
# Each read of a request body waits at most this long: a stalled client frees its server thread (408).
MELANOMA_REQUEST_BODY_TIMEOUT_S = env_int("MELANOMA_REQUEST_BODY_TIMEOUT_S", 10)
# Per-user uploads per minute, one counter shared by the upload page and the API (classifier/ratelimit.py).
MELANOMA_UPLOAD_RATE_PER_MINUTE = env_int("MELANOMA_UPLOAD_RATE_PER_MINUTE", 30)
MELANOMA_UPLOAD_RATE = f"{MELANOMA_UPLOAD_RATE_PER_MINUTE}/minute"
MELANOMA_MAX_IMAGE_PIXELS = env_int("MELANOMA_MAX_IMAGE_MEGAPIXELS", 64) * 1_000_000
MELANOMA_STORED_IMAGE_MAX_SIDE = env_int("MELANOMA_STORED_IMAGE_MAX_SIDE", 1536)
# A JPEG up to this size is stored as taken, its metadata removed without decoding it (the worker makes its
# thumbnail); larger ones and other formats are stored downscaled to MELANOMA_STORED_IMAGE_MAX_SIDE. 0: always that.
MELANOMA_KEEP_ORIGINAL_MAX_BYTES = env_int("MELANOMA_KEEP_ORIGINAL_MAX_MB", 4) * 1024 * 1024
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
# With object storage, a worker downloads each model version once into this cache (a folder per SHA-256).
MELANOMA_MODEL_CACHE_DIR = Path(env_str("MELANOMA_MODEL_CACHE_DIR", str(VAR_DIR / "model-cache")))

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api_tokens.authentication.ApiTokenAuthentication",
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
    # /api/docs/ serves Swagger UI from drf-spectacular-sidecar's static files: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request and response shapes as separate components: otherwise the upload's `image` is documented as the
    # response's URI string instead of a binary file part (found by tests/classifier/test_api_schemathesis.py).
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Login throttling (django-axes) and account rate limits: accounts/throttling.py -------------------
# Failures count per client address only (never per username, or anyone could lock anyone out); a browser that
# logged in to the account before is not held by its address's lockout; the pause doubles per repeat lockout.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
MELANOMA_LOGIN_COOLOFF_MINUTES = env_int("AXES_COOLOFF_MINUTES", 15)
AXES_COOLOFF_TIME = "accounts.throttling.lockout_cooloff"
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
# Not on success: a guesser would log in to an account of their own between guesses to wipe the count.
AXES_RESET_ON_SUCCESS = False
AXES_WHITELIST_CALLABLE = "accounts.throttling.login_from_trusted_device"
AXES_LOCKOUT_CALLABLE = "accounts.throttling.lockout_response"  # a readable page (JSON under /api/), status 429
AXES_CLIENT_IP_CALLABLE = "melanoma_site.client_ip.client_ip"
# The proxies in front of the app (addresses or networks, comma-separated) whose X-Forwarded-For is believed;
# empty: the connecting address is the client (melanoma_site/client_ip.py).
MELANOMA_TRUSTED_PROXIES = env_list("MELANOMA_TRUSTED_PROXIES", [])
MELANOMA_SIGNUP_RATE_PER_HOUR = env_int("MELANOMA_SIGNUP_RATE_PER_HOUR", 10)  # per client address
MELANOMA_PASSWORD_RESET_RATE_PER_HOUR_PER_EMAIL = env_int("MELANOMA_PASSWORD_RESET_RATE_PER_HOUR_PER_EMAIL", 3)
MELANOMA_PASSWORD_RESET_RATE_PER_HOUR_PER_IP = env_int("MELANOMA_PASSWORD_RESET_RATE_PER_HOUR_PER_IP", 10)
# Wrong current passwords (password change, account deletion) per account per 15 minutes.
MELANOMA_PASSWORD_CHECK_FAILURES = env_int("MELANOMA_PASSWORD_CHECK_FAILURES", 5)

# --- Metrics (GET /metrics, classifier/metrics.py): for the scraper only ------------------------------------
MELANOMA_METRICS_TOKEN = env_str("MELANOMA_METRICS_TOKEN")
MELANOMA_METRICS_ALLOWED_IPS = env_list("MELANOMA_METRICS_ALLOWED_IPS", [])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json_line": {"format": "%(message)s"},  # the message is already one JSON object
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "events": {"class": "logging.StreamHandler", "formatter": "json_line"},
    },
    "loggers": {
        # One JSON line per prediction state change (classifier/services/prediction_events.py).
        "melanoma.events": {
            "handlers": ["events"],
            "level": env_str("MELANOMA_EVENTS_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
