from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, register_converter
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from dashboard.api.content import GatewayView
from dashboard.errors import error_body
from dashboard.health import healthz
from dashboard.jobs import JOB_ID
from dashboard.views import auth


class JobIdConverter:
    """A job id in a URL: what JOB_ID allows, so any other text (a NUL, a surrogate, more
    than 100 characters) is a 404 before anything reaches the database."""

    regex = JOB_ID.pattern

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(JobIdConverter, "job_id")


class CidTextConverter:
    """A CID in a URL: any text, "/" and newlines included (Django's `path` stops at a
    newline, which made `/cids/a%0Ab` a 404), so the one normaliser answers 400 invalid_cid."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(CidTextConverter, "cid_text")

urlpatterns = [
    # The admin signs in through our page, with its limits, not through its own.
    path("admin/login/", auth.login_view),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("dashboard.api.urls")),
    # Stored content by CID (outside the API, docs/api.md): result links in the pages, CLI `get`.
    path("ipfs/<str:cid>", GatewayView.as_view(), name="ipfs"),
    path("ipfs/<str:cid>/<path:path>", GatewayView.as_view(), name="ipfs-path"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view loads its script from a URL rather than inline, as the CSP wants.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("dashboard.page_urls")),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "no such endpoint"), status=404)
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "internal error"), status=500)
    return defaults.server_error(request)
