"""STORAGE_URL parsing: unset is local files; s3://KEY:SECRET@host:port/bucket is the private S3 backend; a
malformed value stops start-up with a message that names the variable and never shows the secret."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from melanoma_site.storage_url import LOCAL_BACKEND, S3_BACKEND, storage_from_url


@pytest.mark.parametrize("url", [None, "", "  "])
def test_unset_is_local_files(url):
    assert storage_from_url(url) == {"BACKEND": LOCAL_BACKEND}


def test_s3_url_with_options():
    storage = storage_from_url("s3://AKIA%2Fx:s%40cret@objects.internal:8333/photos?secure=0&region=eu-west-1")
    assert storage["BACKEND"] == S3_BACKEND
    options = storage["OPTIONS"]
    assert (options["access_key"], options["secret_key"]) == ("AKIA/x", "s@cret")
    assert options["bucket_name"] == "photos"
    assert options["endpoint_url"] == "http://objects.internal:8333"
    assert (options["region_name"], options["use_ssl"]) == ("eu-west-1", False)
    assert options["default_acl"] is None  # never public-read
    assert options["addressing_style"] == "path"


def test_https_by_default_and_a_prefix():
    options = storage_from_url("s3://k:s@s3.example.org/bucket?prefix=/clinic-a/")["OPTIONS"]
    assert options["endpoint_url"] == "https://s3.example.org"
    assert options["use_ssl"] is True
    assert options["location"] == "clinic-a"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://k:s@host/bucket", "only the s3:// scheme"),
        ("s3://host:9000/bucket", "access key and secret are missing"),
        ("s3://k:s@host:9000/", "exactly one bucket"),
        ("s3://k:s@host:9000/a/b", "exactly one bucket"),
        ("s3://k:s@host:9000/bucket?secure=maybe", "secure must be 1 or 0"),
        ("s3://k:s@host:9000/bucket?acl=public-read", "unknown option(s) acl"),
        ("s3://k:s@host:port/bucket", "port is not a number"),
    ],
)
def test_malformed_urls_name_the_variable_and_hide_the_secret(url, message):
    with pytest.raises(ImproperlyConfigured) as raised:
        storage_from_url(url)
    assert "STORAGE_URL" in str(raised.value)
    assert message in str(raised.value)
    assert "k:s@" not in str(raised.value)
