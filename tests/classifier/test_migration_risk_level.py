"""Migration 0002: rows scored before calibration existed keep their raw score as `score`, lose the
(uncalibrated) probability, and get a level from their verdict."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("classifier", "0001_initial")]
AFTER = [("classifier", "0004_prediction_score_calibrated_risk_level")]


def test_old_raw_scores_move_to_score_and_get_a_level_from_the_verdict(django_user_model):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_apps = executor.loader.project_state(BEFORE).apps
    owner = old_apps.get_model(django_user_model._meta.label).objects.create(username="old")
    Prediction = old_apps.get_model("classifier", "Prediction")
    refer = Prediction.objects.create(user=owner, image="a.jpg", status="done", melanoma_probability=0.8,
                                      threshold=0.3, verdict="refer")  # fmt: skip
    low = Prediction.objects.create(user=owner, image="b.jpg", status="done", melanoma_probability=0.1,
                                    threshold=0.3, verdict="low_risk")  # fmt: skip
    queued = Prediction.objects.create(user=owner, image="c.jpg", status="queued")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    New = executor.loader.project_state(AFTER).apps.get_model("classifier", "Prediction")

    rows = {row.pk: row for row in New.objects.all()}
    assert (rows[refer.pk].score, rows[refer.pk].melanoma_probability, rows[refer.pk].risk_level) == (
        0.8,
        None,
        "moderate",
    )
    assert (rows[low.pk].score, rows[low.pk].melanoma_probability, rows[low.pk].risk_level) == (0.1, None, "low")
    assert (rows[queued.pk].score, rows[queued.pk].risk_level) == (None, None)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
