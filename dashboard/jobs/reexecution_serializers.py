"""The shape of a job's re-execution, one definition for the jobs API and the notary API."""

from __future__ import annotations

from rest_framework import serializers

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
