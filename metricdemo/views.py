"""Serve the registry in Prometheus text or OpenMetrics format, to allowed scrapers."""

import gzip
import hmac
import ipaddress
from functools import lru_cache

from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from metricdemo import exposition
from metricdemo.conf import app_settings
from metricdemo.telemetry import get_telemetry
from metricdemo.telemetry.collector import rendering

_renderer = exposition.Renderer()


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
    """Return every metric of the registry, in the format the Accept header asks for.

    The app's collection and the registry's other collectors (process,
    platform, django-prometheus) are rendered in one pass.
    """
    refusal = refuse(request)
    if refusal is not None:
        return refusal
    negotiated = exposition.negotiate(request.headers.get("Accept", ""))
    with rendering():
        families = get_telemetry().registry.collect()
        strategy = exposition.names.strategy_of(app_settings.NAME_TRANSLATION)
        body = _renderer.render(families, negotiated, strategy)
    response = HttpResponse(content_type=negotiated.content_type)
    if exposition.gzip_accepted(request.headers.get("Accept-Encoding")):
        body = gzip.compress(body, compresslevel=6)
        response["Content-Encoding"] = "gzip"
    response["Vary"] = "Accept, Accept-Encoding"
    response.content = body
    return response


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


@csrf_exempt
@login_not_required
@never_cache
@require_safe
def rules(request: HttpRequest) -> HttpResponse:
    """Return the alert rules as a Prometheus rule file, when SERVE_RULES is on.

    Protected as /metrics is; 404 while the setting is off. `?format=
    prometheusrule` returns the Prometheus Operator resource instead.
    """
    if not app_settings.SERVE_RULES:
        raise Http404("Serving the alert rules is off (METRICDEMO['SERVE_RULES']).")
    refusal = refuse(request)
    if refusal is not None:
        return refusal
    from metricdemo import alerts, rulefiles

    found = alerts.enabled_rules()
    if request.GET.get("format") == "prometheusrule":
        data = alerts.prometheus_rule(found)
    else:
        data = alerts.rule_file(found)
    return HttpResponse(
        rulefiles.dump(data), content_type="application/yaml; charset=utf-8"
    )
