"""The S3 storage for private medical photos (STORAGE_URL=s3://..., see melanoma_site/storage_url.py).

django-storages' S3Storage with two differences: it never gives out a URL (not even a pre-signed one: every
photo is served by an ownership-checking view), and it can open an object as a stream, so that a view sends
it to the browser chunk by chunk instead of downloading it whole first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from storages.backends.s3 import S3Storage
from storages.utils import clean_name


@dataclass
class StoredStream:
    """An open object: `stream` has read(n)/close(); `size` in bytes."""

    stream: IO[bytes]
    size: int


class PrivateS3Storage(S3Storage):
    def __init__(self, **settings) -> None:
        if settings.get("transfer_config") is None:
            # Photos are small (< 2 MB after re-encoding): one PUT in the calling thread, no transfer thread pool.
            settings["transfer_config"] = TransferConfig(use_threads=False)
        super().__init__(**settings)

    def url(self, name: str, parameters=None, expire=None, http_method=None) -> str:
        raise NotImplementedError(
            "Stored photos have no URL; serve them through classifier.private_files.private_file_response."
        )

    def open_stream(self, name: str) -> StoredStream:
        """One GET; raises FileNotFoundError for a missing object (no HEAD first: one round trip, not two)."""
        key = self._normalize_name(clean_name(name))
        try:
            response = self.connection.meta.client.get_object(Bucket=self.bucket_name, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                raise FileNotFoundError(name) from error
            raise
        return StoredStream(stream=response["Body"], size=int(response["ContentLength"]))

    def ensure_bucket(self) -> bool:
        """Create the bucket when it does not exist (development, tests, CI); True when it was created.
        A production bucket is made by its operator with its own policy; this never changes one."""
        client = self.connection.meta.client
        try:
            client.head_bucket(Bucket=self.bucket_name)
            return False
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
                raise
        client.create_bucket(Bucket=self.bucket_name)
        return True
