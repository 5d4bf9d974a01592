"""Notary API (docs/api.md) and piece registration: thin; the rules are in .services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.fields import CID_SCHEMA
from dashboard.api.permissions import NodeKey, NotaryKey, api_key
from dashboard.api.serializers import error_responses, rendered
from dashboard.notary import awards
from dashboard.notary import services as notary
from dashboard.notary.serializers import (
    AggregateVerificationSerializer,
    AwardInSerializer,
    AwardListQuerySerializer,
    AwardPageSerializer,
    AwardSerializer,
    PieceInSerializer,
    PieceSerializer,
    VerificationQuerySerializer,
    VerificationSerializer,
)


class JobPiecesView(APIView):
    permission_classes = [NodeKey]

    @extend_schema(
        operation_id="job_pieces",
        summary="Register the piece of a job's result CAR (its CommP is recomputed and checked), "
        "optionally inside an FRC-0058 aggregate (its inclusion proof is verified)",
        request=PieceInSerializer,
        responses={
            201: PieceSerializer,
            200: PieceSerializer,
            **error_responses(400, 401, 403, 404, 409, 415, 429, 503),
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        key = api_key(request)
        assert key is not None
        notary.holding(job_id=job_id, key=key)  # who may register, before the body is read
        body = PieceInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        piece, inside, created = notary.register_piece(
            job_id=job_id, key=key, **body.validated_data
        )
        shown = notary.piece_json(piece, inside)
        return Response(rendered(PieceSerializer, shown), status=201 if created else 200)


# The notary's questions: a CID in the path, and the provider the deal is with.
NOTARY_QUESTION = [
    OpenApiParameter("cid", CID_SCHEMA, OpenApiParameter.PATH),
    OpenApiParameter(
        "provider",
        {"type": "string", "pattern": r"^f0\d{1,20}$"},
        description="the provider the deal is with",
    ),
]


def _question(request: Request, cid: str) -> dict[str, Any]:
    query = VerificationQuerySerializer(data={"cid": cid, **request.query_params.dict()})
    query.is_valid(raise_exception=True)
    return query.validated_data


class VerificationView(APIView):
    permission_classes = [NotaryKey]

    @extend_schema(
        operation_id="notary_verification",
        summary="Is this result (or piece) verified, who holds it, how much DataCap is left?",
        parameters=NOTARY_QUESTION,
        responses={200: VerificationSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request: Request, cid: str) -> Response:
        answer = notary.answer(**_question(request, cid))
        return Response(rendered(VerificationSerializer, answer))


class AggregateView(APIView):
    permission_classes = [NotaryKey]

    @extend_schema(
        operation_id="notary_aggregate",
        summary="Which verified jobs are inside this FRC-0058 aggregate, and how much DataCap "
        "may go to it?",
        parameters=NOTARY_QUESTION,
        responses={
            200: AggregateVerificationSerializer,
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    def get(self, request: Request, cid: str) -> Response:
        found = notary.aggregate_answer(**_question(request, cid))
        return Response(rendered(AggregateVerificationSerializer, found))


class AwardsView(APIView):
    permission_classes = [NotaryKey]

    @extend_schema(
        operation_id="notary_awards",
        summary="Awards, newest first, each with what the chain made of it",
        parameters=[AwardListQuerySerializer],
        responses={200: AwardPageSerializer, **error_responses(400, 401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        query = AwardListQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        data = query.validated_data
        filters = awards.AwardFilters(
            state=data["state"], provider=data["provider"], notary=data["notary"]
        )
        page, before = awards.award_page(filters, limit=data["limit"], before=data["before"])
        next_url = None
        if before is not None:
            params = request.query_params.copy()
            params["before"] = str(before)
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        awarded = awards.awarded_on_page(page)
        shown = {"next": next_url, "results": [awards.award_json(a, awarded) for a in page]}
        return Response(rendered(AwardPageSerializer, shown))

    @extend_schema(
        operation_id="notary_award",
        summary="Record DataCap awarded to one deal: of a verified job's result piece, or of "
        "an FRC-0058 aggregate of verified jobs' pieces (idempotent)",
        request=AwardInSerializer,
        responses={
            201: AwardSerializer,
            200: AwardSerializer,
            **error_responses(400, 401, 403, 404, 409, 415, 429),
        },
    )
    def post(self, request: Request) -> Response:
        key = api_key(request)
        assert key is not None
        body = AwardInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        award, created = awards.record_award(key=key, **body.validated_data)
        return Response(rendered(AwardSerializer, award), status=201 if created else 200)
