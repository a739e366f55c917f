from django.urls import path

from classifier.views import images, predictions

app_name = "classifier"

urlpatterns = [
    path("upload/", predictions.upload, name="upload"),
    path("history/", predictions.history, name="history"),
    path("predictions/<int:pk>/", predictions.prediction_detail, name="prediction_detail"),
    path("predictions/<int:pk>/status/", predictions.prediction_status, name="prediction_status"),
    path("predictions/<int:pk>/retry/", predictions.prediction_retry_view, name="prediction_retry"),
    path("predictions/<int:pk>/delete/", predictions.prediction_delete_view, name="prediction_delete"),
    path("predictions/<int:pk>/image/", images.prediction_image, name="prediction_image"),
    path("predictions/<int:pk>/thumbnail/", images.prediction_thumbnail, name="prediction_thumbnail"),
    path("predictions/<int:pk>/heatmap/", images.prediction_heatmap, name="prediction_heatmap"),
]
