"""Route the demo: the admin and metricdemo's /metrics."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/metrics", permanent=False)),
    path("admin/", admin.site.urls),
    path("", include("metricdemo.urls")),
]
