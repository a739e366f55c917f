"""Re-check reminders: one e-mail per due spot, idempotent, only to confirmed addresses, one-click unsubscribe
that works logged out; and the periodic task is on the beat schedule."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import VerifiedEmail
from spots.models import Spot
from spots.services import spot_reminders_send_due, spot_unsubscribe_token
from spots.tasks import REMINDERS_TASK, reminders_send_due_task
from tests.spots.conftest import SECRET_SPOT


def _verify(user) -> None:
    VerifiedEmail.objects.create(user=user, email=user.email, verified_at=timezone.now())


def test_the_task_is_on_the_beat_schedule():
    assert any(entry["task"] == REMINDERS_TASK for entry in settings.CELERY_BEAT_SCHEDULE.values())


def test_one_email_per_due_spot_and_never_twice(alice, spot_with_checks):
    spot, *_ = spot_with_checks  # latest check 31 days ago, every month: due
    _verify(alice)
    assert reminders_send_due_task() == [spot.pk]
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.org"]
    assert SECRET_SPOT in message.subject
    assert "List-Unsubscribe" in message.extra_headers
    # A restarted beat, a second run, a redelivered message: nothing more.
    assert spot_reminders_send_due() == []
    assert spot_reminders_send_due() == []
    assert len(mail.outbox) == 1
    spot.refresh_from_db()
    assert spot.reminded_for is not None


def test_two_workers_at_once_send_one_email(alice, spot_with_checks, transactional_db):
    if connection.vendor == "sqlite":
        pytest.skip("threads on one SQLite file serialise anyway; the claim is an UPDATE either way")
    _verify(alice)
    results: list[list[int]] = []

    def run() -> None:
        results.append(spot_reminders_send_due())
        connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(sent) for sent in results) == [0, 0, 0, 1]
    assert len(mail.outbox) == 1


def test_the_claim_is_atomic_for_the_same_due_date(alice, spot_with_checks):
    from spots.selectors import spots_due_for_reminder
    from spots.services import spot_reminder_claim

    _verify(alice)
    [(spot, due_on)] = spots_due_for_reminder(today=timezone.localdate())
    assert spot_reminder_claim(spot=spot, due_on=due_on) is True
    assert spot_reminder_claim(spot=spot, due_on=due_on) is False  # what a second worker sees


def test_a_newer_check_moves_the_due_date_and_a_later_due_date_reminds_again(alice, spot_with_checks):
    spot, *_ = spot_with_checks
    _verify(alice)
    assert spot_reminders_send_due() == [spot.pk]
    in_two_months = timezone.localdate() + dt.timedelta(days=62)
    assert spot_reminders_send_due(today=in_two_months) == [spot.pk]
    assert len(mail.outbox) == 2


def test_not_due_yet_off_or_unconfirmed_address_sends_nothing(alice, bob, spot_with_checks):
    spot, *_ = spot_with_checks
    assert spot_reminders_send_due() == []  # alice's address is not confirmed
    _verify(alice)
    alice.email = "new@example.org"  # changed since: not confirmed
    alice.save()
    assert spot_reminders_send_due() == []
    alice.email = "alice@example.org"
    alice.save()
    Spot.objects.filter(pk=spot.pk).update(recheck_months=6)
    assert spot_reminders_send_due() == []  # six months after a check a month ago: not yet
    assert mail.outbox == []


def test_a_failed_send_gives_the_claim_back(alice, spot_with_checks, monkeypatch):
    spot, *_ = spot_with_checks
    _verify(alice)
    monkeypatch.setattr("django.core.mail.EmailMessage.send", lambda self, *a, **k: (_ for _ in ()).throw(OSError))
    assert spot_reminders_send_due() == []
    spot.refresh_from_db()
    assert spot.reminded_for is None
    monkeypatch.undo()
    assert spot_reminders_send_due() == [spot.pk]


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_unsubscribe_link_works_logged_out(alice, spot_with_checks, method):
    spot, *_ = spot_with_checks
    _verify(alice)
    spot_reminders_send_due()
    link = re.search(r"http://testserver(/reminders/unsubscribe/\S+/)", mail.outbox[0].body).group(1)
    client = Client(enforce_csrf_checks=True)  # logged out; a mail client's one-click POST has no CSRF token
    response = getattr(client, method)(link)
    assert response.status_code == 200
    assert "Reminders are off" in response.content.decode()
    spot.refresh_from_db()
    assert spot.recheck_months == Spot.Recheck.OFF
    assert getattr(client, method)(link).status_code == 200  # twice is harmless


def test_a_tampered_unsubscribe_link_is_refused(alice, spot_with_checks):
    spot, *_ = spot_with_checks
    token = spot_unsubscribe_token(spot=spot)
    response = Client().get(f"/reminders/unsubscribe/{token[:-2]}xx/")
    assert response.status_code == 400
    assert SECRET_SPOT not in response.content.decode()
    spot.refresh_from_db()
    assert spot.recheck_months == 1


def test_the_account_page_turns_reminders_off_for_every_spot_and_on_again(alice, spot_with_checks):
    spot, *_ = spot_with_checks
    _verify(alice)
    client = Client()
    client.force_login(alice)
    account = client.get(reverse("accounts:account")).content.decode()
    assert "No reminders for any spot" in account

    response = client.post(reverse("spots:account_reminders"), {"reminders": "off"})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:account")
    page = client.get(reverse("accounts:account")).content.decode()
    assert "Off for all your spots" in page
    assert "Turn reminders back on" in page
    assert 'data-testid="reminders-off"' in client.get(reverse("spots:spot_detail", args=[spot.pk])).content.decode()
    assert spot_reminders_send_due() == []  # due, but the account says no
    assert mail.outbox == []
    spot.refresh_from_db()
    assert spot.recheck_months == 1  # the spot keeps its interval for when reminders come back

    client.post(reverse("spots:account_reminders"), {"reminders": "on"})
    assert "No reminders for any spot" in client.get(reverse("accounts:account")).content.decode()
    assert spot_reminders_send_due() == [spot.pk]
    assert reverse("accounts:account") in mail.outbox[0].body  # the e-mail says where the switch is


def test_the_account_switch_refuses_odd_input_and_get(alice):
    from spots.models import ReminderOptOut

    client = Client()
    client.force_login(alice)
    response = client.post(reverse("spots:account_reminders"), {"reminders": "maybe"}, follow=True)
    assert response.status_code == 200
    assert "Choose whether you want re-check reminders." in response.content.decode()
    assert not ReminderOptOut.objects.exists()
    assert client.get(reverse("spots:account_reminders")).status_code == 405
    assert Client().post(reverse("spots:account_reminders"), {"reminders": "off"}).status_code == 302  # to log in
    assert not ReminderOptOut.objects.exists()
    for _ in range(2):  # twice is harmless
        client.post(reverse("spots:account_reminders"), {"reminders": "off"})
    assert ReminderOptOut.objects.filter(user=alice).count() == 1
