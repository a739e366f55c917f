"""Celery tasks for spots: thin, the service does the work."""

from celery import shared_task

from spots.services import spot_reminders_send_due

REMINDERS_TASK = "spots.reminders_send_due"


@shared_task(name=REMINDERS_TASK, ignore_result=True)
def reminders_send_due_task() -> list[int]:
    """Periodic (CELERY_BEAT_SCHEDULE "spots-reminders"): one e-mail per spot due for a re-check."""
    return spot_reminders_send_due()
