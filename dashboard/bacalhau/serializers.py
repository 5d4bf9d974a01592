"""Shapes of the Bacalhau bridges (docs/bacalhau.md): the probe's body and answer, and the
legacy requester API's. Bacalhau's own field names, as its peers send and read them."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from dashboard.bacalhau.probe import parse_probe


# A Bacalhau compute node's job-selection probe: any body version, keys in any case (the
# fields below are for the schema; probe.parse_probe reads the body). Validated
# data: `job`, a ProbeJob.
class BacalhauProbeSerializer(serializers.Serializer):
    NodeID = serializers.CharField(required=False, help_text="v1.1 and later")
    Job = serializers.DictField(required=False, help_text="v1.1 and later: a v2 models.Job")
    Callback = serializers.CharField(required=False, help_text="v1.1 to v1.4; not used")
    node_id = serializers.CharField(required=False, help_text="v1.0")
    job_id = serializers.CharField(required=False, help_text="v1.0")
    spec = serializers.DictField(required=False, help_text="v1.0: a legacy job spec")

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        return {"job": parse_probe(data)}


class ProbeAnswerSerializer(serializers.Serializer):
    shouldBid = serializers.BooleanField()
    shouldWait = serializers.BooleanField(help_text="always false: read by nodes up to v1.5")
    reason = serializers.CharField()


# Bacalhau's legacy requester API: bodies are read by legacy.py, which needs the raw bytes of
# `payload`; these describe them for the schema.
class LegacySubmitSerializer(serializers.Serializer):
    client_public_key = serializers.CharField(help_text="base64 DER RSA public key (PKCS #1)")
    payload = serializers.DictField(help_text="{APIVersion, ClientID, Spec}: a legacy job spec")
    signature = serializers.CharField(
        help_text="base64 RSASSA-PKCS1-v1_5 SHA-256 over the payload's bytes as sent"
    )


class LegacyJobMetadataSerializer(serializers.Serializer):
    ID = serializers.CharField()
    ClientID = serializers.CharField()
    CreatedAt = serializers.CharField()


class LegacyJobSerializer(serializers.Serializer):
    APIVersion = serializers.CharField()
    Metadata = LegacyJobMetadataSerializer()
    Spec = serializers.JSONField(help_text="as submitted")


class LegacySubmitAnswerSerializer(serializers.Serializer):
    job = LegacyJobSerializer()


class LegacyJobRequestSerializer(serializers.Serializer):
    client_id = serializers.CharField()
    job_id = serializers.CharField()


class LegacyStateChangeSerializer(serializers.Serializer):
    Previous = serializers.CharField(required=False)
    New = serializers.CharField()


class LegacyEventSerializer(serializers.Serializer):
    Type = serializers.ChoiceField(choices=["JobLevel", "ExecutionLevel"])
    JobID = serializers.CharField()
    JobState = LegacyStateChangeSerializer()
    NewVersion = serializers.IntegerField()
    Comment = serializers.CharField(required=False)
    Time = serializers.CharField()


class LegacyEventsSerializer(serializers.Serializer):
    events = LegacyEventSerializer(many=True)


class LegacyStorageSpecSerializer(serializers.Serializer):
    StorageSource = serializers.CharField()
    Name = serializers.CharField()
    CID = serializers.CharField()


class LegacyResultSerializer(serializers.Serializer):
    NodeID = serializers.CharField()
    Data = LegacyStorageSpecSerializer()


class LegacyResultsSerializer(serializers.Serializer):
    results = LegacyResultSerializer(many=True)
