"""The reminder task as production runs it: real Celery workers, each with its embedded beat firing the task every
second, a restarted beat, a second worker with a beat of its own; one due spot, one e-mail.

The workers are separate processes on this run's database and queues (the stack harness, melanoma_site/stack.py);
they send through Django's file-based e-mail backend, so the test reads what they sent from a folder.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from email import message_from_string
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import VerifiedEmail
from melanoma_site.stack import Stack, isolated_env
from spots.tasks import REMINDERS_TASK
from tests.processes import run_database_url
from tests.spots.conftest import SECRET_SPOT

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SEPARATOR = "-" * 79  # what the file-based backend writes after each message


def _sent(mail_dir: Path) -> list[str]:
    """Every message the workers sent, as text."""
    messages = []
    for path in sorted(mail_dir.glob("*.log")):
        messages += [part.strip() for part in path.read_text().split(SEPARATOR) if part.strip()]
    return messages


def _runs(stacks: list[Stack]) -> int:
    """How many times a worker finished the reminder task (logged by Celery at INFO)."""
    pattern = re.compile(rf"Task {re.escape(REMINDERS_TASK)}\[[^\]]+\] succeeded")
    return sum(len(pattern.findall(stack.log("worker"))) for stack in stacks)


def _wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str, stacks: list[Stack]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(stack.log_tail("worker") for stack in stacks)
            pytest.fail(f"{what} did not happen within {timeout_s:g} s:\n{logs}")
        time.sleep(0.25)


@pytest.fixture
def beat_stacks(isolated_services, private_media, tmp_path) -> Iterator[tuple[Callable[[], Stack], Path]]:
    """make() starts a stack whose worker runs beat with the reminders every second, sending to `mail_dir`."""
    mail_dir = tmp_path / "mail"
    stacks: list[Stack] = []

    def make() -> Stack:
        root = tmp_path / f"stack-{len(stacks)}"
        env = isolated_env(
            root,
            settings_module=os.environ["DJANGO_SETTINGS_MODULE"],
            database_url=run_database_url(),
            queue=isolated_services["queue"],
            media_root=private_media,
            MELANOMA_REMINDERS_EVERY_S="1",
            DJANGO_EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
            DJANGO_EMAIL_FILE_PATH=str(mail_dir),
            MELANOMA_SITE_URL="http://testserver",
        )
        stack = Stack(
            env=env,
            var_dir=root / "var",
            redis_url=isolated_services["redis_url"],
            log_dir=root / "logs",
            worker_concurrency=2,
            beat=True,
        )
        stacks.append(stack)
        return stack

    yield make, mail_dir
    for stack in stacks:
        stack.close()


def test_beat_sends_one_email_per_due_spot_across_restarts_and_a_second_worker(alice, spot_with_checks, beat_stacks):
    spot, *_ = spot_with_checks  # monthly reminders, latest check 31 days ago: due
    VerifiedEmail.objects.create(user=alice, email=alice.email, verified_at=timezone.now())
    make, mail_dir = beat_stacks

    first, second = make(), make()
    first.start_worker()
    second.start_worker()  # a second worker with a beat of its own: both fire the task every second
    stacks = [first, second]
    _wait_until(lambda: len(_sent(mail_dir)) >= 1, timeout_s=60, what="a reminder e-mail", stacks=stacks)
    _wait_until(lambda: _runs(stacks) >= 6, timeout_s=60, what="six runs of the reminder task", stacks=stacks)

    # A restarted beat (its schedule file kept) fires again from the start.
    runs_before = _runs(stacks)
    first.stop_worker()
    first.start_worker()
    _wait_until(lambda: _runs(stacks) >= runs_before + 3, timeout_s=60, what="runs after the restart", stacks=stacks)

    messages = _sent(mail_dir)
    assert len(messages) == 1, messages
    message = message_from_string(messages[0])
    assert message["To"] == alice.email
    assert SECRET_SPOT in message["Subject"]
    assert "/reminders/unsubscribe/" in message["List-Unsubscribe"]
    spot.refresh_from_db()
    assert spot.reminded_for is not None
