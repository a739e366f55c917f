"""Who opened whose prediction: a row for every time someone other than its owner saw a photo, note or result."""

from django.conf import settings
from django.db import models

# The group whose members may open other people's predictions (it holds classifier.view_prediction; created by
# a data migration). Staff status alone grants nothing: it only opens the admin.
CLINICIAN_GROUP = "clinician"


class PredictionAccess(models.Model):
    # Usernames and the prediction id are copied, not only linked: the log must still say who saw what after
    # either account or the prediction is deleted.
    viewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="prediction_accesses"
    )
    viewer_username = models.CharField(max_length=150)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    owner_username = models.CharField(max_length=150)
    prediction_pk = models.PositiveBigIntegerField("prediction id", db_index=True)
    method = models.CharField(max_length=10)
    url = models.CharField("URL", max_length=2000)
    accessed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-accessed_at", "-id"]
        verbose_name = "prediction access"
        verbose_name_plural = "prediction accesses"

    def __str__(self) -> str:
        return f"{self.viewer_username} opened {self.owner_username}'s prediction {self.prediction_pk}"
