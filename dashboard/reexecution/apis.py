"""The verifier API (docs/reexecution.md): a verifier node claims a queued re-execution of
another node's job, keeps its lease, and reports what its run gave. Thin; the rules live in
dashboard.reexecution.services."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.permissions import NodeKey, api_key
from dashboard.api.serializers import error_responses, rendered
from dashboard.reexecution import selectors
from dashboard.reexecution import serializers as rs
from dashboard.reexecution import services as reexecution

REPORT_ERRORS = error_responses(400, 401, 403, 404, 409, 415, 429)


class ReexecutionClaimView(APIView):
    permission_classes = [NodeKey]

    @extend_schema(
        operation_id="reexecution_claim",
        summary="A verifier node takes the oldest queued re-execution of another node's job",
        request=None,
        responses={
            200: rs.ReexecutionTaskSerializer,
            204: None,
            **error_responses(401, 403, 429),
        },
    )
    def post(self, request: Request) -> Response:
        key = api_key(request)
        assert key is not None
        run = reexecution.claim_for_node(key=key)
        if run is None:
            return Response(status=204)
        return Response(rendered(rs.ReexecutionTaskSerializer, run))


class ReexecutionLeaseView(APIView):
    permission_classes = [NodeKey]

    @extend_schema(
        operation_id="reexecution_renew",
        summary="A verifier node keeps the lease of the re-execution it runs",
        request=None,
        responses={200: rs.ReexecutionTaskSerializer, **error_responses(401, 403, 404, 409, 429)},
    )
    def post(self, request: Request, run_id: int) -> Response:
        key = api_key(request)
        assert key is not None
        run = reexecution.renew_for_node(run_id=run_id, key=key)
        return Response(rendered(rs.ReexecutionTaskSerializer, run))


class ReexecutionResultView(APIView):
    permission_classes = [NodeKey]

    @extend_schema(
        operation_id="reexecution_result",
        summary="A verifier node reports the result CID its re-run gave (the dashboard compares)",
        request=rs.ReexecutionResultSerializer,
        responses={200: rs.ReexecutionSerializer, **REPORT_ERRORS},
    )
    def post(self, request: Request, run_id: int) -> Response:
        key = api_key(request)
        assert key is not None
        reexecution.held(run_id=run_id, key=key)  # who may report, before the body is read
        body = rs.ReexecutionResultSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = reexecution.report_result(run_id=run_id, key=key, **body.validated_data)
        return Response(rendered(rs.ReexecutionSerializer, selectors.summary(run.job)))


class ReexecutionFailureView(APIView):
    permission_classes = [NodeKey]

    @extend_schema(
        operation_id="reexecution_failure",
        summary="A verifier node says why its re-run gave no result (an input, a limit)",
        request=rs.ReexecutionFailureSerializer,
        responses={200: rs.ReexecutionFailureReplySerializer, **REPORT_ERRORS},
    )
    def post(self, request: Request, run_id: int) -> Response:
        key = api_key(request)
        assert key is not None
        reexecution.held(run_id=run_id, key=key)  # who may report, before the body is read
        body = rs.ReexecutionFailureSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = reexecution.report_failure(run_id=run_id, key=key, **body.validated_data)
        reply = selectors.summary(run.job)
        return Response(rendered(rs.ReexecutionFailureReplySerializer, reply))
