from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.templatetags.static import static
from django.urls import include, path, re_path, register_converter
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from dashboard.bacalhau import apis as bacalhau
from dashboard.content import apis as content
from dashboard.eligibility import apis as eligibility
from dashboard.errors import error_body
from dashboard.health import healthz
from dashboard.jobs import apis as jobs
from dashboard.jobs.services import JOB_ID
from dashboard.notary import apis as notary
from dashboard.pages import auth
from dashboard.reexecution import apis as reexecution


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


class SubpathConverter(CidTextConverter):
    """A path under a CID in `/ipfs/`: any text, newlines included, so that a name no entry
    has is the gateway's JSON 404, not Django's page."""


register_converter(SubpathConverter, "subpath")

api_v1 = [
    # any text: multibase base64 CIDs (m…) may contain "/"
    path("cids/<cid_text:cid>", eligibility.CidView.as_view(), name="api-cid"),
    path("locations/<cid_text:cid>", eligibility.LocationsView.as_view(), name="api-locations"),
    path("eligibility", eligibility.EligibilityView.as_view(), name="api-eligibility"),
    path("scanner", eligibility.ScannerView.as_view(), name="api-scanner"),
    path(
        "bacalhau/probe/<str:node_key>",
        bacalhau.BacalhauProbeView.as_view(),
        name="api-bacalhau-probe",
    ),
    path("jobs", jobs.JobsView.as_view(), name="api-jobs"),
    path("jobs/<job_id:job_id>", jobs.JobView.as_view(), name="api-job"),
    path("jobs/<job_id:job_id>/results", jobs.JobResultsView.as_view(), name="api-job-results"),
    path("jobs/<job_id:job_id>/cancel", jobs.JobCancelView.as_view(), name="api-job-cancel"),
    path("jobs/<job_id:job_id>/decision", jobs.JobDecisionView.as_view(), name="api-job-decision"),
    path(
        "jobs/<job_id:job_id>/reexecutions",
        jobs.JobReexecutionView.as_view(),
        name="api-job-reexecutions",
    ),
    path(
        "reexecutions/claim",
        reexecution.ReexecutionClaimView.as_view(),
        name="api-reexecution-claim",
    ),
    path(
        "reexecutions/<int:run_id>/lease",
        reexecution.ReexecutionLeaseView.as_view(),
        name="api-reexecution-lease",
    ),
    path(
        "reexecutions/<int:run_id>/result",
        reexecution.ReexecutionResultView.as_view(),
        name="api-reexecution-result",
    ),
    path(
        "reexecutions/<int:run_id>/failure",
        reexecution.ReexecutionFailureView.as_view(),
        name="api-reexecution-failure",
    ),
    path("jobs/<job_id:job_id>/pieces", notary.JobPiecesView.as_view(), name="api-job-pieces"),
    path("content", content.ContentView.as_view(), name="api-content"),
    path(
        "notary/verifications/<cid_text:cid>",
        notary.VerificationView.as_view(),
        name="api-notary-verification",
    ),
    path(
        "notary/aggregates/<cid_text:cid>",
        notary.AggregateView.as_view(),
        name="api-notary-aggregate",
    ),
    path("notary/awards", notary.AwardsView.as_view(), name="api-notary-awards"),
]

# Bacalhau's legacy requester API, at the root as bacalhau-sdk 1.3 calls it, and under
# /api/v1/requester/ as Bacalhau v1.1 to v1.3 serve it (docs/bacalhau.md).
requester = [
    path("submit", bacalhau.LegacySubmitView.as_view(), name="bacalhau-submit"),
    path("events", bacalhau.LegacyEventsView.as_view(), name="bacalhau-events"),
    path("results", bacalhau.LegacyResultsView.as_view(), name="bacalhau-results"),
]
requester_v1 = [
    path("submit", bacalhau.LegacySubmitV1View.as_view(), name="bacalhau-submit"),
    path("events", bacalhau.LegacyEventsV1View.as_view(), name="bacalhau-events"),
    path("results", bacalhau.LegacyResultsV1View.as_view(), name="bacalhau-results"),
]


@csrf_exempt
def api_not_found(request: HttpRequest) -> HttpResponse:
    """Every method on a path under /api/ that no endpoint has."""
    return JsonResponse(error_body("not_found", "no such endpoint"), status=404)


urlpatterns = [
    # The admin signs in through our page, with its limits, not through its own.
    path("admin/login/", auth.login_view),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # What browsers ask for unprompted: the icon base.html links.
    path("favicon.ico", RedirectView.as_view(url=static("dashboard/favicon.svg"), permanent=True)),
    path("api/v1/requester/", include((requester_v1, "requester"), namespace="requester-v1")),
    path("api/v1/", include(api_v1)),
    path("requester/", include((requester, "requester"))),
    # Stored content by CID (outside the API, docs/api.md): result links in the pages, CLI `get`.
    path("ipfs/<str:cid>", content.GatewayView.as_view(), name="ipfs"),
    path("ipfs/<str:cid>/<subpath:path>", content.GatewayPathView.as_view(), name="ipfs-path"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view loads its script from a URL rather than inline, as the CSP wants.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Anything else under /api/ is the API's JSON 404 (api_not_found, below), routed rather
    # than left to handler404: DEBUG's HTML page and APPEND_SLASH's redirect never reach it.
    re_path(r"^api/", api_not_found),
    path("", include("dashboard.pages.urls")),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "internal error"), status=500)
    return defaults.server_error(request)
