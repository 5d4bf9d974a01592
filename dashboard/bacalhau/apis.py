"""The Bacalhau bridges' views (docs/bacalhau.md): the compute node's job-selection probe and
the legacy requester API. Thin; the rules live in probe.py and legacy.py."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.serializers import error_responses, rendered
from dashboard.api.throttling import count_on, key_counter
from dashboard.bacalhau import legacy, probe
from dashboard.bacalhau import serializers as bs
from dashboard.errors import DomainError
from dashboard.keys.services import authenticate_key
from dashboard.models import ApiKey


class BacalhauProbeView(APIView):
    """A Bacalhau compute node sends no credentials: its key rides in the URL. A probe key
    (which can do nothing else), or a node key, as the first nodes were set up with."""

    SCOPES = (ApiKey.Scope.PROBE, ApiKey.Scope.NODE)

    authentication_classes: list[type] = []
    permission_classes: list[type] = []

    @extend_schema(
        operation_id="bacalhau_probe",
        summary="A Bacalhau compute node's job-selection probe: bid on this job?",
        description="Set the node's --job-selection-probe-http (Node.Compute.JobSelection."
        "ProbeHTTP; JobAdmissionControl.ProbeHTTP from v1.7) to this URL with a probe key "
        "(create_api_key --scope probe; a node key works too). "
        "The answer is exactly application/json with a Content-Length, as the node needs.",
        auth=[],
        parameters=[OpenApiParameter("node_key", str, OpenApiParameter.PATH)],
        request=bs.BacalhauProbeSerializer,
        responses={
            200: bs.ProbeAnswerSerializer,
            **error_responses(400, 401, 403, 413, 415, 429),
        },
    )
    def post(self, request: Request, node_key: str) -> Response:
        key = authenticate_key(node_key)
        if key is None:
            raise DomainError("invalid_api_key", "unknown or revoked API key", status=401)
        if key.scope not in self.SCOPES:
            raise DomainError(
                "forbidden", "the probe URL needs a probe key (or a compute node's)", status=403
            )
        count_on(request, self, key_counter(key.prefix))
        body = bs.BacalhauProbeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        answer = probe.answer(body.validated_data["job"])
        probe.record_probe(key)
        response = Response(rendered(bs.ProbeAnswerSerializer, answer))
        response["Cache-Control"] = "no-store"
        return response


class _LegacyView(APIView):
    """Bacalhau's legacy clients send no Authorization header: a submit is signed, and reads
    name the client (docs/bacalhau.md). A client counts on its rate limit as a key does,
    once it is known: a verified submit, or a read of one of its jobs."""

    authentication_classes: list[type] = []
    permission_classes: list[type] = []

    def count(self, request: Request, client_id: str) -> None:
        count_on(request, self, f"throttle:bacalhau-client:{client_id}")


class LegacySubmitView(_LegacyView):
    @extend_schema(
        operation_id="bacalhau_legacy_submit",
        summary="Bacalhau's legacy submit (bacalhau-sdk 1.3): a signed job from a bound client",
        description="Bacalhau's legacy clients send no Authorization header: the submit is "
        "signed (docs/bacalhau.md). The same signed submit again is answered with the job it "
        "made the first time, and makes none.",
        auth=[],
        request=bs.LegacySubmitSerializer,
        responses={200: bs.LegacySubmitAnswerSerializer, **error_responses(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        signed = legacy.signed_submit(request.body)
        self.count(request, signed.client.client_id)
        job = legacy.submit(signed)
        answer = {
            "job": {
                "APIVersion": signed.payload.get("apiversion") or "V1beta1",
                "Metadata": {
                    "ID": job.id,
                    "ClientID": signed.client.client_id,
                    "CreatedAt": job.created_at.isoformat().replace("+00:00", "Z"),
                },
                "Spec": signed.spec,
            }
        }
        response = Response(rendered(bs.LegacySubmitAnswerSerializer, answer))
        response["X-Bacalhau-Job-ID"] = job.id
        return response


class LegacyEventsView(_LegacyView):
    @extend_schema(
        operation_id="bacalhau_legacy_events",
        summary="Bacalhau's legacy events: a client's job's history",
        auth=[],
        request=bs.LegacyJobRequestSerializer,
        responses={200: bs.LegacyEventsSerializer, **error_responses(400, 404, 429)},
    )
    def post(self, request: Request) -> Response:
        job, client_id = legacy.client_job(request.body)
        self.count(request, client_id)
        return Response(rendered(bs.LegacyEventsSerializer, {"events": legacy.events(job)}))


class LegacyResultsView(_LegacyView):
    @extend_schema(
        operation_id="bacalhau_legacy_results",
        summary="Bacalhau's legacy results: a client's completed job's result CID",
        auth=[],
        request=bs.LegacyJobRequestSerializer,
        responses={200: bs.LegacyResultsSerializer, **error_responses(400, 404, 429)},
    )
    def post(self, request: Request) -> Response:
        job, client_id = legacy.client_job(request.body)
        self.count(request, client_id)
        return Response(rendered(bs.LegacyResultsSerializer, {"results": legacy.results(job)}))


# The same operations where Bacalhau v1.1 to v1.3 serve them, under their own operation ids.
@extend_schema_view(post=extend_schema(operation_id="bacalhau_legacy_submit_v1"))
class LegacySubmitV1View(LegacySubmitView):
    pass


@extend_schema_view(post=extend_schema(operation_id="bacalhau_legacy_events_v1"))
class LegacyEventsV1View(LegacyEventsView):
    pass


@extend_schema_view(post=extend_schema(operation_id="bacalhau_legacy_results_v1"))
class LegacyResultsV1View(LegacyResultsView):
    pass
