"""Eligibility API views (docs/api.md): thin; the logic is in the selectors."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chain_scanner.status import scanner_status
from dashboard.api.fields import CID_SCHEMA
from dashboard.api.permissions import AnyKey, NodeKey
from dashboard.api.serializers import error_responses, rendered
from dashboard.eligibility import bacalhau_probe, selectors
from dashboard.eligibility import serializers as s
from dashboard.errors import DomainError
from dashboard.keys.services import authenticate_key
from dashboard.models import ApiKey


class CidView(APIView):
    permission_classes = [AnyKey]

    @extend_schema(
        operation_id="cid_status",
        summary="FIL+ status of one CID",
        parameters=[OpenApiParameter("cid", CID_SCHEMA, OpenApiParameter.PATH)],
        responses={200: s.CidStatusSerializer, **error_responses(400, 401, 403, 429)},
    )
    def get(self, request: Request, cid: str) -> Response:
        # The path's CID is read by the selector's one normaliser (invalid_cid naming it).
        return Response(rendered(s.CidStatusSerializer, selectors.cid_report(cid)))


class EligibilityView(APIView):
    permission_classes = [NodeKey]

    @extend_schema(
        operation_id="eligibility",
        summary="Are these input CIDs blessed?",
        request=s.EligibilityRequestSerializer,
        responses={200: s.EligibilitySerializer, **error_responses(400, 401, 403, 413, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        body = s.EligibilityRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        answer = selectors.eligibility(**body.validated_data)
        return Response(rendered(s.EligibilitySerializer, answer))


class ScannerView(APIView):
    permission_classes = [AnyKey]

    @extend_schema(
        operation_id="scanner_status",
        summary="Scanner checkpoint, lag behind head, counts, last error",
        responses={200: s.ScannerSerializer, **error_responses(401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        return Response(rendered(s.ScannerSerializer, scanner_status()))


class BacalhauProbeView(APIView):
    """A Bacalhau compute node sends no credentials: its node key rides in the URL."""

    authentication_classes: list[type] = []
    permission_classes: list[type] = []

    @extend_schema(
        operation_id="bacalhau_probe",
        summary="A Bacalhau compute node's job-selection probe: bid on this job?",
        description="Set the node's --job-selection-probe-http (Node.Compute.JobSelection."
        "ProbeHTTP; JobAdmissionControl.ProbeHTTP from v1.7) to this URL with a node key. "
        "The answer is exactly application/json with a Content-Length, as the node needs.",
        auth=[],
        parameters=[OpenApiParameter("node_key", str, OpenApiParameter.PATH)],
        request=s.BacalhauProbeSerializer,
        responses={
            200: s.ProbeAnswerSerializer,
            **error_responses(400, 401, 403, 415, 429),
        },
    )
    def post(self, request: Request, node_key: str) -> Response:
        key = authenticate_key(node_key)
        if key is None:
            raise DomainError("invalid_api_key", "unknown or revoked API key", status=401)
        if key.scope != ApiKey.Scope.NODE:
            raise DomainError("forbidden", "the probe URL needs a compute node's key", status=403)
        body = s.BacalhauProbeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        answer = bacalhau_probe.answer(body.validated_data["job"])
        bacalhau_probe.record_probe(key)
        response = Response(rendered(s.ProbeAnswerSerializer, answer))
        response["Cache-Control"] = "no-store"
        return response
