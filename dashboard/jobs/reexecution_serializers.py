"""The shape of a job's re-execution, one definition for the jobs API and the notary API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from dashboard.api.inputs import Body, CidField, Integer, Text
from dashboard.errors import DomainError
from dashboard.models import Reexecution


class DiffEntrySerializer(serializers.Serializer):
    path = serializers.CharField(help_text='"stdout", "outputs/a.txt"…; "." for the roots')
    reported = serializers.CharField(allow_null=True, help_text="null: absent in the reported")
    rerun = serializers.CharField(allow_null=True, help_text="null: absent in the re-run")


# A job's re-execution (dashboard/jobs/reexecution.py): the latest run's state and outcome.
class ReexecutionSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["not_verified_by_rerun", *Reexecution.State.values])
    deterministic = serializers.BooleanField(
        help_text="false for Docker: a mismatch is information, not evidence"
    )
    runs = serializers.IntegerField(help_text="re-executions of this job so far")
    reason = serializers.ChoiceField(
        choices=["policy", "sampled", "node_mismatched", "requested"], allow_null=True
    )
    requested_by = serializers.CharField(allow_null=True)
    reported_cid = serializers.CharField(allow_null=True, help_text="the result CID reported")
    rerun_cid = serializers.CharField(allow_null=True, help_text="the result CID re-computed")
    exit_code = serializers.IntegerField(allow_null=True)
    runtime_ms = serializers.IntegerField(allow_null=True)
    ran_by = serializers.CharField(allow_null=True, help_text="the worker that re-ran it")
    attempts = serializers.IntegerField(help_text="workers that took this run (one was lost)")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    diff = DiffEntrySerializer(many=True, allow_null=True, help_text="a mismatch's differences")
    error = serializers.CharField(allow_null=True, help_text="why a failed run gave no result")


# What a verifier node is given to run: the original's spec (its limits included), not the
# result CID its node reported, so that the verifier can only compute it.
class ReexecutionTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    job_id = serializers.CharField()
    spec = serializers.DictField(source="job.spec")
    lease_until = serializers.DateTimeField(help_text="renew before this, every third of it")
    attempts = serializers.IntegerField()


# A verifier node's outcome: the result its run gave, or why it gave none.
class ReexecutionOutcomeSerializer(Body):
    result_cid = CidField(required=False)
    exit_code = Integer(required=False)
    runtime_ms = Integer(required=False, min_value=0)
    error = Text(
        required=False, max_length=4000, help_text="instead of a result: why the run gave none"
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        result = ("result_cid", "exit_code", "runtime_ms")
        if "error" in data:
            extra = [name for name in result if name in data]
            if extra:
                raise DomainError(
                    "invalid_request",
                    "an outcome is a result or an error, not both",
                    fields={extra[0]: "not with error"},
                )
            return data
        missing = [name for name in result if name not in data]
        if missing:
            raise DomainError(
                "invalid_request",
                f"{missing[0]} is required (or give error instead)",
                fields={missing[0]: "required"},
            )
        return data
