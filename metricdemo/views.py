"""Serve the registry in Prometheus text or OpenMetrics format, to allowed scrapers."""

import hmac
import ipaddress
from functools import lru_cache

from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from prometheus_client.exposition import choose_encoder

from metricdemo.conf import app_settings
from metricdemo.telemetry import get_telemetry


# Outermost, so that an unsafe method meets require_safe's 405 (Allow: GET, HEAD)
# rather than the CSRF middleware's 403 page: scrapers hold no CSRF token.
@csrf_exempt
@login_not_required
@never_cache
@require_safe
# A scrape only reads, and its reads must not run inside a request transaction
# (ATOMIC_REQUESTS): there they would wait on the database in this thread.
@transaction.non_atomic_requests
def metrics(request: HttpRequest) -> HttpResponse:
    """Return every metric of the registry, OpenMetrics if the Accept header asks."""
    refusal = refuse(request)
    if refusal is not None:
        return refusal
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(get_telemetry().registry)
    return HttpResponse(body, content_type=content_type)


def refuse(request: HttpRequest) -> HttpResponse | None:
    """Return a 403 or 401 response if the request may not scrape, else None."""
    allowed = app_settings.ALLOWED_IPS
    if allowed and not _address_allowed(request.META.get("REMOTE_ADDR", ""), allowed):
        return HttpResponse(
            "This address may not read metrics.\n",
            status=403,
            content_type="text/plain",
        )
    token = app_settings.AUTH_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), str(token).encode()
        ):
            response = HttpResponse(
                "A bearer token is required to read metrics.\n",
                status=401,
                content_type="text/plain",
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return None


def _address_allowed(address: str, allowed: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _networks(tuple(allowed)))


@lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in allowed)
