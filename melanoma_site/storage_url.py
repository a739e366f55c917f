"""STORAGE_URL -> Django's STORAGES["default"]: where photos, thumbnails and model artifacts are kept.

Unset: local files under MEDIA_ROOT (var/media), the embedded default of `make run`.
`s3://KEY:SECRET@host:port/bucket?secure=0&region=eu-west-1&prefix=melanoma`: django-storages' S3 backend (boto3)
on that endpoint, path-style addressing, objects private (no ACL is set and no URL is ever handed out: see
melanoma_site/s3_storage.py). `secure=0` speaks plain HTTP (a loopback SeaweedFS/MinIO); the default is HTTPS.
Key and secret are URL-quoted where they contain reserved characters.

Imports nothing of Django but its exception: settings read it once at start-up; a malformed URL stops the
process with the variable's name in the message.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

S3_BACKEND = "melanoma_site.s3_storage.PrivateS3Storage"
LOCAL_BACKEND = "django.core.files.storage.FileSystemStorage"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_KNOWN_QUERY = {"secure", "region", "prefix"}


def _bad(url: str, why: str) -> ImproperlyConfigured:
    # Never echo the secret back into a log.
    shown = url.split("@", 1)[-1] if "@" in url else url
    return ImproperlyConfigured(
        f"STORAGE_URL must look like s3://KEY:SECRET@host:port/bucket[?secure=0&region=R&prefix=P]; {why} "
        f"(got ...@{shown})"
    )


def storage_from_url(url: str) -> dict:
    """The STORAGES["default"] entry for `url` ('' or unset: local files)."""
    url = (url or "").strip()
    if not url:
        return {"BACKEND": LOCAL_BACKEND}
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise _bad(url, f"only the s3:// scheme is supported, not {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise _bad(url, "the host is missing")
    if parts.username is None or parts.password is None:
        raise _bad(url, "the access key and secret are missing")
    bucket = parts.path.strip("/")
    if not bucket or "/" in bucket:
        raise _bad(url, "give exactly one bucket name as the path")
    query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - _KNOWN_QUERY
    if unknown:
        raise _bad(url, f"unknown option(s) {', '.join(sorted(unknown))}")
    secure_raw = query.get("secure", "1").lower()
    if secure_raw not in _TRUE | _FALSE:
        raise _bad(url, f"secure must be 1 or 0, not {query['secure']!r}")
    secure = secure_raw in _TRUE
    try:
        port = parts.port
    except ValueError as error:
        raise _bad(url, "the port is not a number") from error
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    endpoint = f"{'https' if secure else 'http'}://{host}" + (f":{port}" if port else "")
    return {
        "BACKEND": S3_BACKEND,
        "OPTIONS": {
            "access_key": unquote(parts.username),
            "secret_key": unquote(parts.password),
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": query.get("region") or "us-east-1",
            "location": query.get("prefix", "").strip("/"),
            "use_ssl": secure,
            "addressing_style": "path",  # works with every S3 server; virtual hosts need DNS per bucket
            "signature_version": "s3v4",
            "default_acl": None,  # the bucket's own (private) policy; never public-read
            "querystring_auth": True,
            # Names are random UUIDs: checking for an existing object first would only add a round trip.
            "file_overwrite": True,
        },
    }


def storage_is_s3(storages: dict) -> bool:
    return storages.get("default", {}).get("BACKEND") == S3_BACKEND
