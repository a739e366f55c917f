from django.urls import path

from spots import views

app_name = "spots"

urlpatterns = [
    path("spots/new/", views.spot_new, name="spot_new"),
    path("spots/<int:pk>/", views.spot_detail, name="spot_detail"),
    path("spots/<int:pk>/edit/", views.spot_edit, name="spot_edit"),
    path("spots/<int:pk>/delete/", views.spot_delete_view, name="spot_delete"),
    path("spots/<int:pk>/report.pdf", views.spot_report, name="spot_report"),
    path("predictions/<int:pk>/report.pdf", views.prediction_report, name="prediction_report"),
    path("predictions/<int:pk>/move/", views.prediction_move, name="prediction_move"),
    path("reminders/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("reminders/account/", views.account_reminders, name="account_reminders"),
]
