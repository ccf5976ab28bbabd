"""Serve the registry in Prometheus text or OpenMetrics format."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.exposition import choose_encoder

from metricdemo.telemetry import get_telemetry


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Return every metric of the registry, OpenMetrics if the Accept header asks."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(get_telemetry().registry)
    return HttpResponse(body, content_type=content_type)
