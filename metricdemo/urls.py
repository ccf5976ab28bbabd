"""Route the metrics endpoint; include it with path("", include("metricdemo.urls"))."""

from django.urls import path

from metricdemo import views

app_name = "metricdemo"

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
    path("metrics/rules", views.rules, name="rules"),
]
