"""Prediction.score (the raw model output) and risk_level; melanoma_probability becomes calibrated.

Rows written before this migration stored the raw score in melanoma_probability. Their models had no
calibration, so the value moves to `score`, the probability becomes empty (nothing calibrated it), and the
level comes from the verdict alone: low_risk -> low, refer -> moderate (no measurement could say "high").
"""

from django.db import migrations, models
from django.db.models import F


def move_raw_scores(apps, schema_editor):
    Prediction = apps.get_model("classifier", "Prediction")
    done = Prediction.objects.filter(melanoma_probability__isnull=False)
    done.update(score=F("melanoma_probability"))
    done.update(melanoma_probability=None)
    Prediction.objects.filter(verdict="low_risk").update(risk_level="low")
    Prediction.objects.filter(verdict="refer").update(risk_level="moderate")


def restore_raw_scores(apps, schema_editor):
    Prediction = apps.get_model("classifier", "Prediction")
    Prediction.objects.filter(score__isnull=False).update(melanoma_probability=F("score"))


class Migration(migrations.Migration):
    dependencies = [
        ("classifier", "0003_model_version_artifact"),
    ]

    operations = [
        migrations.AddField(
            model_name="prediction",
            name="risk_level",
            field=models.CharField(
                blank=True,
                choices=[("low", "Low"), ("moderate", "Moderate"), ("high", "High")],
                max_length=16,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="prediction",
            name="score",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.RunPython(move_raw_scores, restore_raw_scores),
    ]
