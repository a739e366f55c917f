"""A worker on another host: a Celery worker in a network namespace of its own (`ip netns` + a veth pair), with
an empty working directory, that reaches PostgreSQL, the broker and the object store only over that link, and
completes predictions uploaded over HTTP to a web server in the host's namespace.

The link uses a link-local /30 (169.254.x.0/30) that exists only between the two ends; the namespace has no
other route, so the worker cannot reach anything but what is forwarded to it: PostgreSQL, Redis (the broker) and
the S3 gateway, each through a TCP forwarder on the host's end of the link. The worker's disk holds no model: it
downloads the registered version from the bucket into its cache and verifies it.

Skipped with the reason where a namespace cannot be made (not root, no `ip`, no PostgreSQL).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from melanoma_site.stack import BASE_DIR, Stack, isolated_env

pytestmark = pytest.mark.slow

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)  # noqa: S603,S607


class Forwarder:
    """TCP from `listen` (the host's end of the link) to a loopback service; one thread per direction."""

    def __init__(self, listen_host: str, target_port: int) -> None:
        self.target_port = target_port
        self.server = socket.create_server((listen_host, 0))
        self.port = self.server.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.closed = True
        self.server.close()


@pytest.fixture
def namespace() -> Iterator[tuple[str, str, str]]:
    """(name, host address, namespace address) of a fresh namespace joined to the host by a veth pair."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("no `ip` command (iproute2)")
    tag = secrets.token_hex(3)
    name, host_if, ns_if = f"melw{tag}", f"mh{tag}", f"mn{tag}"
    subnet = 4 * secrets.randbelow(63)  # a /30 inside 169.254.<n>.0/24: link-local, routed nowhere
    third = 1 + secrets.randbelow(254)
    host_ip, ns_ip = f"169.254.{third}.{subnet + 1}", f"169.254.{third}.{subnet + 2}"
    made = _ip("netns", "add", name, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {made.stderr.strip()}")
    try:
        for command in (
            ("link", "add", host_if, "type", "veth", "peer", "name", ns_if),
            ("link", "set", ns_if, "netns", name),
            ("addr", "add", f"{host_ip}/30", "dev", host_if),
            ("link", "set", host_if, "up"),
            ("-n", name, "addr", "add", f"{ns_ip}/30", "dev", ns_if),
            ("-n", name, "link", "set", ns_if, "up"),
            ("-n", name, "link", "set", "lo", "up"),
        ):
            result = _ip(*command, check=False)
            if result.returncode != 0:
                pytest.skip(f"cannot wire the namespace (ip {' '.join(command)}): {result.stderr.strip()}")
        yield name, host_ip, ns_ip
    finally:
        _ip("link", "del", host_if, check=False)
        _ip("netns", "del", name, check=False)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    name = f"melanoma_netns_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        pytest.skip(f"a worker on another host needs PostgreSQL; none at {POSTGRES_ADMIN_URL}: {error}")
    yield name
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _status(database_url: str, pk: int) -> tuple[str, str]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        return connection.execute("SELECT status, error FROM classifier_prediction WHERE id = %s", (pk,)).fetchone()


def test_worker_in_its_own_namespace_completes_predictions(namespace, postgres_database, s3_bucket, model_dir,
                                                           real_photo_bytes, tmp_path):  # fmt: skip
    ns_name, host_ip, ns_ip = namespace
    server = s3_bucket.server
    database_url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + postgres_database
    password = secrets.token_urlsafe(12)
    env = isolated_env(
        tmp_path / "web",
        settings_module="melanoma_site.settings.development",
        database_url=database_url,
        STORAGE_URL=s3_bucket.url,
        MELANOMA_UPLOAD_RATE_PER_MINUTE="1000",
    )
    stack = Stack(env=env, var_dir=tmp_path / "web" / "var", log_dir=tmp_path / "logs", web_workers=1)
    forwarders: list[Forwarder] = []
    worker: subprocess.Popen | None = None
    try:
        stack.start_redis()  # the broker, on loopback: reached from the namespace through a forwarder only
        stack.manage("migrate", "--no-input", "-v", "0")
        # Registering with STORAGE_URL set uploads the model folder to the bucket.
        stack.run_module("bench.stack_setup", "users", password, "1", str(model_dir))
        stack.start_web()

        postgres = Forwarder(host_ip, int(POSTGRES_ADMIN_URL.rsplit(":", 1)[1].split("/")[0]))
        broker = Forwarder(host_ip, stack.redis_port)
        s3 = Forwarder(host_ip, server.port)
        forwarders += [postgres, broker, s3]
        workdir = tmp_path / "worker-host"  # empty: no var/, no models/, no media
        workdir.mkdir()
        worker_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "PYTHONPATH": str(BASE_DIR),  # the code, and nothing else of this host
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "melanoma_site.settings.development",
            "DATABASE_URL": f"postgres://postgres@{host_ip}:{postgres.port}/{postgres_database}",
            "REDIS_URL": f"redis://{host_ip}:{broker.port}/0",
            "STORAGE_URL": server.storage_url(host=host_ip, bucket=s3_bucket.name).replace(
                f":{server.port}/", f":{s3.port}/"
            ),
            "MELANOMA_CELERY_QUEUE": env["MELANOMA_CELERY_QUEUE"],
            "CACHE_KEY_PREFIX": env["CACHE_KEY_PREFIX"],
            "MELANOMA_VAR_DIR": str(workdir / "var"),
            "MELANOMA_MODELS_DIR": str(workdir / "no-models-here"),
        }
        log_path = tmp_path / "logs" / "netns-worker.log"
        with log_path.open("w") as log:
            worker = subprocess.Popen(  # noqa: S603
                ["ip", "netns", "exec", ns_name, sys.executable, "-m", "celery", "-A", "melanoma_site",  # noqa: S607
                 "worker", "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO",
                 "-n", f"netns-{ns_name}@%h", "--without-mingle", "--without-gossip"],
                cwd=workdir, env=worker_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

        with httpx.Client(base_url=stack.base_url, timeout=60) as client:
            token = client.post("/api/token/", data={"username": "load000", "password": password}).json()["token"]
            client.headers.update({"Authorization": f"Token {token}", "Accept": "application/json"})
            ids = []
            for _ in range(2):
                response = client.post(
                    "/api/predictions/", files={"image": ("mole.jpg", real_photo_bytes, "image/jpeg")}
                )
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
        deadline = time.monotonic() + 180
        statuses = {}
        while time.monotonic() < deadline:
            statuses = {pk: _status(database_url, pk) for pk in ids}
            if all(status in ("done", "failed") for status, _ in statuses.values()) or worker.poll() is not None:
                break
            time.sleep(0.5)
        worker_log = log_path.read_text(errors="replace")
        assert all(status == "done" for status, _ in statuses.values()), (statuses, worker_log[-3000:])
        assert f"{host_ip}" in worker_log or "Connected to redis" in worker_log
        # It loaded the model from its verified download, not from a folder of this host.
        cache = workdir / "var" / "model-cache"
        assert any((entry / ".verified").is_file() for entry in cache.iterdir())
        # And it can reach nothing else: the host's loopback services are not on its network.
        probe = _ip("netns", "exec", ns_name, sys.executable, "-c",
                    "import socket; socket.create_connection(('127.0.0.1', 5432), timeout=2)", check=False)  # fmt: skip
        assert probe.returncode != 0
    finally:
        if worker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
        for forwarder in forwarders:
            forwarder.close()
        stack.close()
