"""Shapes of re-execution (docs/reexecution.md): a job's latest run as the job API and the
notary show it, and the verifier API's task and reports."""

from __future__ import annotations

from rest_framework import serializers

from dashboard.api.fields import Body, CidField, Integer, Text
from dashboard.models import MAX_REASON, Reexecution
from dashboard.reexecution.selectors import NOT_RERUN
from executor import outcomes


class DiffEntrySerializer(serializers.Serializer):
    path = serializers.CharField(help_text='"stdout", "outputs/a.txt"…; "." for the roots')
    reported = serializers.CharField(allow_null=True, help_text="null: absent in the reported")
    rerun = serializers.CharField(allow_null=True, help_text="null: absent in the re-run")


OUTCOMES = [outcome for outcome in outcomes.ALL if outcome != outcomes.COMPLETED]


class ReceiptSerializer(Body):
    """What ran and how it ended (docs/jobs.md, "Receipts"), as a node reports it beside a
    result or a re-run; the same shape is shown back."""

    error_code = "invalid_result"
    engine = serializers.ChoiceField(choices=["wasm", "docker"])
    runtime = Text(max_length=100, help_text='e.g. "wasmtime 50.0.1"')
    target = Text(max_length=50, allow_null=True, help_text="the compiler backend: cranelift")
    determinism = serializers.ListField(
        child=Text(max_length=50), max_length=32, help_text="the settings that make runs agree"
    )
    fuel_used = Integer(min_value=0, allow_null=True)
    # A receipt comes with a result, and only a run that completed gives one: a node whose
    # receipt says otherwise contradicts its own report.
    outcome = serializers.ChoiceField(
        choices=[outcomes.COMPLETED], help_text="completed: a receipt comes with a result"
    )
    module_cid = CidField(allow_null=True)
    image = Text(max_length=500, allow_null=True)
    input_cids = serializers.ListField(child=CidField(), max_length=1000)


# A job's re-execution (selectors.summary): the latest run's state and outcome.
class ReexecutionSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=[NOT_RERUN, *Reexecution.State.values])
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
    receipt = ReceiptSerializer(allow_null=True, help_text="what the re-run ran, and how it ended")
    error = serializers.CharField(
        allow_null=True, help_text="why a failed run gave no result, or a run was not verifiable"
    )
    refusal = serializers.ChoiceField(
        choices=Reexecution.Refusal.values,
        allow_null=True,
        help_text="not_verifiable: over the re-execution limits, or over a quota",
    )
    mismatch_review = serializers.BooleanField(
        help_text="a re-execution mismatched after the job was verified: the notary answers "
        "rerun_mismatch until a moderator confirms or revokes the verification"
    )


# What a verifier node is told after its /failure: the job's re-execution less the result
# CID its node reported (a verifier is never told it: the next run it took of that job could
# echo it without computing).
class ReexecutionFailureReplySerializer(ReexecutionSerializer):
    reported_cid = None  # type: ignore[assignment]


# What a verifier node is given to run: the original's spec (its limits included), not the
# result CID its node reported, so that the verifier can only compute it.
class ReexecutionTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    job_id = serializers.CharField()
    spec = serializers.DictField(source="job.spec")
    lease_until = serializers.DateTimeField(help_text="renew before this, every third of it")
    deadline = serializers.DateTimeField(
        allow_null=True,
        help_text="the lease is taken back at this time however often it was renewed: the "
        "spec's time limit plus REEXECUTE_GRACE_S from the claim",
    )
    attempts = serializers.IntegerField()


# A verifier node's outcome: the result its run gave (…/result), or why it gave none
# (…/failure).
class ReexecutionResultSerializer(Body):
    result_cid = CidField()
    exit_code = Integer(min_value=-(2**63), max_value=2**63 - 1)
    runtime_ms = Integer(min_value=0, max_value=2**63 - 1)
    receipt = ReceiptSerializer(required=False, allow_null=True, default=None)


class ReexecutionFailureSerializer(Body):
    error = Text(max_length=MAX_REASON, help_text="why the run gave no result")
    outcome = serializers.ChoiceField(
        choices=OUTCOMES,
        default=None,
        allow_null=True,
        help_text="how the run ended, when it ran (docs/jobs.md): timed_out, stack_exhausted "
        "and host_failure make the re-execution not_verifiable rather than failed",
    )
