"""Shapes of the notary API and piece registration (docs/api.md)."""

from __future__ import annotations

from rest_framework import serializers

from dashboard.api.fields import Body, CidField, PieceCidField, PieceSizeField, ProviderField
from dashboard.novelty.serializers import NoveltySerializer
from dashboard.reexecution.serializers import ReexecutionSerializer


class AggregateInSerializer(Body):
    piece_cid = PieceCidField(help_text="the aggregate's piece CID")
    piece_size = PieceSizeField(help_text="the aggregate's padded size")
    proof = serializers.JSONField(
        help_text="the FRC-0058 inclusion proof of the piece in the aggregate, as `executor "
        'aggregate` writes it: {"tree": {"offset", "path"}, "index": {"offset", "path"}}, '
        "nodes as hex (docs/aggregates.md)"
    )


class PieceInSerializer(Body):
    piece_cid = PieceCidField()
    piece_size = PieceSizeField()
    payload_cid = CidField(help_text="the job's result CID: the root of the CAR")
    aggregate = AggregateInSerializer(
        required=False, help_text="the FRC-0058 aggregate the piece is stored inside"
    )


class AggregateRefSerializer(serializers.Serializer):
    piece_cid = serializers.CharField()
    piece_size = serializers.IntegerField()


class PieceSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    piece_cid = serializers.CharField()
    piece_size = serializers.IntegerField()
    payload_cid = serializers.CharField()
    aggregate = AggregateRefSerializer(
        allow_null=True, help_text="the aggregate this registration proved the piece inside"
    )


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
        choices=[
            "not_moderated",
            "rejected",
            "revoked",
            "awaiting_second_approval",
            "rerun_mismatch",
            "no_holder",
            "other_provider",
        ]
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
    reexecution = ReexecutionSerializer(
        help_text="whether re-running the job gave the result CID its node reported"
    )
    novelty = NoveltySerializer(
        allow_null=True, help_text="how much of the result is new data rather than a copy"
    )


class AwardInSerializer(Body):
    cid = CidField(help_text="the job's result CID or a registered piece CID")
    provider = ProviderField()
    piece_cid = PieceCidField()
    piece_size = PieceSizeField()


class VerificationQuerySerializer(Body):
    ignores_unknown = True  # a query string: the path's CID and `provider`
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


class AggregateJobSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    piece_cid = serializers.CharField(help_text="the job's result piece, inside the aggregate")
    piece_size = serializers.IntegerField()
    verified = serializers.BooleanField(help_text="as the notary's question answers it")
    reason = NotVerifiedReasonSerializer(allow_null=True)
    moderation_state = serializers.ChoiceField(
        choices=["pending", "verified", "rejected", "revoked", "awaiting_second_approval"]
    )
    datacap_bytes = serializers.IntegerField(allow_null=True)
    awarded_bytes = serializers.IntegerField()
    remaining_bytes = serializers.IntegerField()
    reexecution = ReexecutionSerializer()
    novelty = NoveltySerializer(allow_null=True)


class AggregateVerificationSerializer(serializers.Serializer):
    piece_cid = serializers.CharField(help_text="the aggregate's piece CID")
    piece_size = serializers.IntegerField(help_text="the aggregate's padded size")
    jobs = AggregateJobSerializer(many=True, help_text="the sub-pieces proven inside it")
    truncated = serializers.BooleanField(help_text="more than 1,000 sub-pieces: the first listed")
    awardable_bytes = serializers.IntegerField(
        help_text="the verified sub-pieces' remaining DataCap, at most the aggregate's size"
    )
