"""Shapes of the jobs API (docs/api.md, docs/jobs.md) for the OpenAPI schema.

Validation of a spec is executor.spec's (one set of rules for the API, the CLI and the
worker); these serializers document the shapes, they do not validate them.
"""

from __future__ import annotations

from rest_framework import serializers

from dashboard.api.inputs import CidField


class WasmSpecSerializer(serializers.Serializer):
    module = CidField()
    entry_point = serializers.CharField(required=False, default="_start")
    args = serializers.ListField(child=serializers.CharField(), required=False)
    env = serializers.DictField(child=serializers.CharField(), required=False)


class DockerSpecSerializer(serializers.Serializer):
    image = serializers.CharField()
    entrypoint = serializers.ListField(child=serializers.CharField(), required=False)
    env = serializers.DictField(child=serializers.CharField(), required=False)


class InputSerializer(serializers.Serializer):
    cid = CidField()
    path = serializers.CharField(help_text="absolute guest path, not under /outputs")


class LimitsSerializer(serializers.Serializer):
    timeout_s = serializers.FloatField(required=False, min_value=0, max_value=86400)
    memory_bytes = serializers.IntegerField(required=False, min_value=65536)
    fuel = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    input_bytes = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="at most this many bytes of inputs (file bytes plus 4096 a file or folder); "
        "the node's EXECUTOR_MAX_INPUT_BYTES applies too",
    )


class JobSubmitSerializer(serializers.Serializer):
    engine = serializers.ChoiceField(choices=["wasm", "docker"])
    wasm = WasmSpecSerializer(required=False, help_text="required when engine is wasm")
    docker = DockerSpecSerializer(required=False, help_text="required when engine is docker")
    inputs = InputSerializer(many=True, required=False)
    limits = LimitsSerializer(required=False)
    annotations = serializers.ListField(child=serializers.CharField(), required=False)
    external = serializers.BooleanField(
        required=False, help_text="a compute node registering a job it runs itself"
    )
    id = serializers.CharField(required=False, help_text="the node's own job id (external only)")


class JobInputSerializer(serializers.Serializer):
    cid = serializers.CharField()
    path = serializers.CharField()
    blessed = serializers.BooleanField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    as_of_epoch = serializers.IntegerField(allow_null=True)


class JobResultSerializer(serializers.Serializer):
    result_cid = CidField()
    exit_code = serializers.IntegerField()
    stdout_cid = CidField()
    stderr_cid = CidField()
    outputs_cid = CidField()
    size_bytes = serializers.IntegerField(min_value=0)
    runtime_ms = serializers.IntegerField(min_value=0)
    provider = serializers.CharField(required=False, allow_null=True)


class ModerationSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["pending", "verified", "rejected", "revoked"])
    datacap_bytes = serializers.IntegerField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)


class JobSerializer(serializers.Serializer):
    id = serializers.CharField()
    state = serializers.ChoiceField(
        choices=["queued", "running", "completed", "failed", "cancelled"]
    )
    engine = serializers.ChoiceField(choices=["wasm", "docker"])
    spec = serializers.DictField()
    external = serializers.BooleanField()
    node = serializers.CharField(allow_null=True)
    annotations = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    attempts = serializers.IntegerField()
    inputs_blessed = serializers.BooleanField(allow_null=True)
    inputs = JobInputSerializer(many=True)
    result = JobResultSerializer(allow_null=True)
    moderation = ModerationSerializer()


class JobPageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True, help_text="URL of the next page")
    results = JobSerializer(many=True)


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["verify", "reject"])
    datacap_bytes = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text='bytes (required to verify); the API also takes text like "32 GiB"',
    )
    reason = serializers.CharField(required=False, allow_blank=True, help_text="required to reject")
