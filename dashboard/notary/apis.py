"""Notary API (docs/api.md) and piece registration: thin; the rules are in .services."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.inputs import (
    CID_SCHEMA,
    Body,
    CidField,
    PieceCidField,
    PieceSizeField,
    ProviderField,
)
from dashboard.api.permissions import NodeKey, NotaryKey, api_key
from dashboard.api.serializers import error_responses
from dashboard.notary import services as notary


class PieceInSerializer(Body):
    piece_cid = PieceCidField()
    piece_size = PieceSizeField()
    payload_cid = CidField(help_text="the job's result CID: the root of the CAR")


class PieceSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    piece_cid = serializers.CharField()
    piece_size = serializers.IntegerField()
    payload_cid = serializers.CharField()


class PieceRefSerializer(serializers.Serializer):
    piece_cid = serializers.CharField()
    piece_size = serializers.IntegerField()


class ChainRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField()
    piece_cid = serializers.CharField()
    piece_size = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["active", "pending", "expired"])


class ChainStorageSerializer(serializers.Serializer):
    deals = ChainRowSerializer(many=True)
    claims = ChainRowSerializer(many=True)
    on_chain_bytes = serializers.IntegerField()
    awarded_bytes = serializers.IntegerField()
    flags = serializers.ListField(
        child=serializers.ChoiceField(choices=["other_provider", "more_on_chain_than_awarded"])
    )


class NotVerifiedReasonSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=["not_moderated", "rejected", "revoked", "no_holder", "other_provider"]
    )
    message = serializers.CharField()


class VerificationSerializer(serializers.Serializer):
    cid = serializers.CharField()
    verified = serializers.BooleanField(
        help_text="verified by a moderator, and held by the asked provider when one is given"
    )
    reason = NotVerifiedReasonSerializer(
        allow_null=True, help_text="why `verified` is false; null when it is true"
    )
    job_id = serializers.CharField()
    provider = serializers.CharField(allow_null=True, help_text="who holds the results")
    provider_matches = serializers.BooleanField(allow_null=True)
    moderation_state = serializers.ChoiceField(
        choices=["pending", "verified", "rejected", "revoked"]
    )
    datacap_bytes = serializers.IntegerField(allow_null=True)
    awarded_bytes = serializers.IntegerField()
    remaining_bytes = serializers.IntegerField()
    verified_at = serializers.DateTimeField(allow_null=True)
    pieces = PieceRefSerializer(many=True)
    on_chain = ChainStorageSerializer()


class AwardInSerializer(Body):
    cid = CidField(help_text="the job's result CID or a registered piece CID")
    provider = ProviderField()
    piece_cid = PieceCidField()
    piece_size = PieceSizeField()


class VerificationQuerySerializer(Body):
    cid = CidField()
    provider = ProviderField(default=None)


class AwardSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    piece_cid = serializers.CharField()
    piece_size = serializers.IntegerField()
    provider = serializers.CharField()
    awarded_bytes = serializers.IntegerField()
    remaining_bytes = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class JobPiecesView(APIView):
    permission_classes = [NodeKey]

    @extend_schema(
        operation_id="job_pieces",
        summary="Register the piece of a job's result CAR; its CommP is recomputed and checked",
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
        body = PieceInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        piece, created = notary.register_piece(job_id=job_id, key=key, **body.validated_data)
        return Response(PieceSerializer(piece).data, status=201 if created else 200)


class VerificationView(APIView):
    permission_classes = [NotaryKey]

    @extend_schema(
        operation_id="notary_verification",
        summary="Is this result (or piece) verified, who holds it, how much DataCap is left?",
        parameters=[
            OpenApiParameter("cid", CID_SCHEMA, OpenApiParameter.PATH),
            OpenApiParameter(
                "provider",
                {"type": "string", "pattern": r"^f0\d{1,20}$"},
                description="the provider the deal is with",
            ),
        ],
        responses={200: VerificationSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request: Request, cid: str) -> Response:
        data = {"cid": cid, **request.query_params.dict()}
        query = VerificationQuerySerializer(data=data, allow_unknown=True)
        query.is_valid(raise_exception=True)
        answer = notary.verification(**query.validated_data)
        return Response(VerificationSerializer(answer).data)


class AwardsView(APIView):
    permission_classes = [NotaryKey]

    @extend_schema(
        operation_id="notary_award",
        summary="Record DataCap awarded to one deal of a verified job's results (idempotent)",
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
        award, created = notary.record_award(key=key, **body.validated_data)
        return Response(AwardSerializer(award).data, status=201 if created else 200)
