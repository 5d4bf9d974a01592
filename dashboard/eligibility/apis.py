"""Eligibility API views (docs/api.md): thin; the logic is in the selectors."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chain_scanner.status import scanner_status
from dashboard.api.fields import CID_SCHEMA
from dashboard.api.permissions import AnyKeyOrSession, NodeKey, SubmitterOrNodeKey
from dashboard.api.serializers import error_responses, rendered
from dashboard.eligibility import locations, selectors
from dashboard.eligibility import serializers as s


class CidView(APIView):
    permission_classes = [AnyKeyOrSession]

    @extend_schema(
        operation_id="cid_status",
        summary="FIL+ status of one CID",
        parameters=[OpenApiParameter("cid", CID_SCHEMA, OpenApiParameter.PATH)],
        responses={200: s.CidStatusSerializer, **error_responses(400, 401, 403, 429)},
    )
    def get(self, request: Request, cid: str) -> Response:
        # The path's CID is read by the selector's one normaliser (invalid_cid naming it).
        return Response(rendered(s.CidStatusSerializer, selectors.cid_report(cid)))


class LocationsView(APIView):
    permission_classes = [SubmitterOrNodeKey]

    @extend_schema(
        operation_id="cid_locations",
        summary="Where a CID may be fetched from: providers holding it under active FIL+ storage",
        parameters=[OpenApiParameter("cid", CID_SCHEMA, OpenApiParameter.PATH)],
        responses={200: s.LocationsSerializer, **error_responses(400, 401, 403, 429)},
    )
    def get(self, request: Request, cid: str) -> Response:
        return Response(rendered(s.LocationsSerializer, locations.location_report(cid)))


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
    permission_classes = [AnyKeyOrSession]

    @extend_schema(
        operation_id="scanner_status",
        summary="Scanner checkpoint, lag behind head, counts, last error",
        responses={200: s.ScannerSerializer, **error_responses(401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        return Response(rendered(s.ScannerSerializer, scanner_status()))
