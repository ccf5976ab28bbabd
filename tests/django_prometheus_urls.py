"""URLs of a host project that serves /metrics with django-prometheus's view only."""

from django.urls import include, path

urlpatterns = [path("", include("django_prometheus.urls"))]
