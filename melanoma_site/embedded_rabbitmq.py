"""A RabbitMQ node of our own, for the tests and fault scenarios that stop and restart the broker.

The machine's RabbitMQ (127.0.0.1:5672) may be shared by other runs; restarting it would break theirs. This
starts a second node of the installed `rabbitmq-server` (Debian's package) on a free loopback port with its data
in a temp folder, restarts its application (`rabbitmqctl stop_app` / `start_app`: queues and persistent messages
survive, connections drop) and stops it. Needs the rabbitmq-server package; as root it runs as the `rabbitmq`
user (the package's wrapper script switches to it).

Nothing here imports Django.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from melanoma_site.embedded_redis import free_port

START_TIMEOUT_S = 60.0


def rabbitmq_available() -> str | None:
    """None when a node can be started here, else why not."""
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        return "rabbitmq-server is not installed (apt-get install rabbitmq-server)"
    return None


def amqp_is_reachable(url: str, timeout_s: float = 1.0) -> bool:
    from kombu import Connection  # noqa: PLC0415

    connection = Connection(url, connect_timeout=timeout_s)
    try:
        # kombu-stubs say int, but kombu only adds it to time(): a float is what it works with.
        connection.ensure_connection(max_retries=0, timeout=timeout_s)  # type: ignore[arg-type]
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        connection.release()


@dataclass
class EmbeddedRabbitMQ:
    directory: Path
    port: int
    node: str
    env: dict[str, str] = field(repr=False)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _ctl(self, *args: str, timeout_s: float = 60) -> None:
        result = subprocess.run(  # noqa: S603 - the package's own control script
            ["rabbitmqctl", "-n", self.node, *args],  # noqa: S607
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr[-1000:] or result.stdout[-1000:]}")

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        log = (self.directory / "server.out").open("a")
        self.process = subprocess.Popen(  # noqa: S603
            ["rabbitmq-server"],  # noqa: S607
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            self._ctl("wait", str(self.directory / "rabbit.pid"), "--timeout", str(int(START_TIMEOUT_S)))
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            tail = (self.directory / "server.out").read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"RabbitMQ node {self.node} did not start: {error}\n{tail}") from error

    def stop_app(self) -> None:
        """The broker goes away (connections drop, the port closes); the node and its data stay."""
        self._ctl("stop_app")

    def start_app(self) -> None:
        self._ctl("start_app")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not amqp_is_reachable(self.url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ node {self.node} did not accept connections after start_app")
            time.sleep(0.2)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._ctl("stop", timeout_s=30)
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # The Erlang VM may outlive the wrapper script; it writes its pid here.
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int((self.directory / "rabbit.pid").read_text().strip()), signal.SIGKILL)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_embedded_rabbitmq(*, port: int | None = None) -> EmbeddedRabbitMQ:
    """Start a node on 127.0.0.1:`port` (a free one by default); wait until it accepts connections."""
    reason = rabbitmq_available()
    if reason:
        raise RuntimeError(reason)
    port = port or free_port()
    directory = Path(tempfile.mkdtemp(prefix="melanoma-rabbitmq-"))
    node = f"melanoma{port}{secrets.token_hex(2)}@localhost"
    (directory / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users.guest = true\n")
    (directory / "enabled_plugins").write_text("[].\n")
    with contextlib.suppress(KeyError, PermissionError):
        # The package's wrapper runs the server as `rabbitmq`; it must own its data folder.
        account = pwd.getpwnam("rabbitmq")
        for path in [directory, *directory.iterdir()]:
            os.chown(path, account.pw_uid, account.pw_gid)
    with socket.socket() as probe:  # the Erlang distribution port: another free one, loopback only
        probe.bind(("127.0.0.1", 0))
        dist_port = probe.getsockname()[1]
    env = {
        **os.environ,
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
        "RABBITMQ_LOG_BASE": str(directory / "log"),
        "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(directory / "rabbit.pid"),
    }
    broker = EmbeddedRabbitMQ(directory=directory, port=port, node=node, env=env)
    try:
        broker.start()
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return broker
