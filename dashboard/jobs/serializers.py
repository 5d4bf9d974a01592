"""Shapes of the jobs API (docs/api.md, docs/jobs.md): what each operation reads and answers.

A job spec is validated by executor.spec.parse_spec, the one set of rules the API, the CLI
and the worker share; JobSubmitSerializer wraps it, and its nested serializers describe the
spec for the OpenAPI schema only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dashboard.api.fields import Body, CidField, DataCapField, Integer, Text, provider_address
from dashboard.errors import DomainError
from dashboard.jobs import provenance
from dashboard.jobs.selectors import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_LIMIT,
    NODE_NAME_LONGEST,
    decode_cursor,
)
from dashboard.jobs.services import JOB_ID
from dashboard.models import Job
from dashboard.moderation.risks import RISK_LABELS, job_risks
from dashboard.notary.serializers import ChainStorageSerializer, PieceRefSerializer
from dashboard.notary.services import chain_storage
from dashboard.novelty.selectors import novelty_of
from dashboard.novelty.serializers import NoveltySerializer
from dashboard.reexecution import selectors as reexecutions
from dashboard.reexecution.serializers import ReceiptSerializer, ReexecutionSerializer
from executor.spec import MAX_ANNOTATION_LENGTH, SpecError, parse_spec

JOB_ID_RULE = "1 to 100 of A-Z a-z 0-9 . _ : -"


# An argument, an environment value or an annotation may be empty (executor.spec takes it).
def _text_item() -> serializers.CharField:
    return serializers.CharField(allow_blank=True, trim_whitespace=False)


class WasmSpecSerializer(serializers.Serializer):
    module = CidField()
    entry_point = serializers.CharField(required=False, default="_start")
    args = serializers.ListField(child=_text_item(), required=False)
    env = serializers.DictField(child=_text_item(), required=False)


class DockerSpecSerializer(serializers.Serializer):
    image = serializers.CharField()
    entrypoint = serializers.ListField(child=_text_item(), required=False)
    env = serializers.DictField(child=_text_item(), required=False)


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


# A job spec, and for a node's own job `external` and its `id`; validated data: `spec` (a
# JobSpec), `external`, `job_id`. (Comments, not docstrings, on serializers: drf-spectacular
# would put a docstring into the schema.)
class JobSubmitSerializer(Body):
    error_code = "invalid_spec"

    engine = serializers.ChoiceField(choices=["wasm", "docker"])
    wasm = WasmSpecSerializer(required=False, help_text="required when engine is wasm")
    docker = DockerSpecSerializer(required=False, help_text="required when engine is docker")
    inputs = InputSerializer(many=True, required=False)
    limits = LimitsSerializer(required=False)
    annotations = serializers.ListField(child=_text_item(), required=False)
    external = serializers.BooleanField(
        required=False, help_text="a compute node registering a job it runs itself"
    )
    id = serializers.CharField(required=False, help_text="the node's own job id (external only)")

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise DomainError("invalid_spec", "the body must be a JSON object (a job spec)")
        fields = dict(data)
        external = fields.pop("external", False)
        job_id = fields.pop("id", None)
        if not isinstance(external, bool):
            raise DomainError(
                "invalid_spec",
                "external must be true or false",
                fields={"external": "not a boolean"},
            )
        try:
            spec = parse_spec(fields)
        except SpecError as exc:
            raise DomainError("invalid_spec", str(exc), fields={exc.field: exc.message}) from None
        if external and (not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id)):
            raise DomainError(
                "invalid_spec",
                f"an external job needs its own id: {JOB_ID_RULE}",
                fields={"id": "missing or malformed"},
            )
        if not external and job_id is not None:
            raise DomainError(
                "invalid_spec",
                "id is only for external jobs; the dashboard names the jobs it runs",
                fields={"id": "not allowed without external: true"},
            )
        return {"spec": spec, "external": external, "job_id": job_id}


class TextOrNull(Text):
    """Text whose stored empty value means "none": answered as null."""

    def to_representation(self, value: Any) -> Any:
        return str(value) if value else None


# One attempt to fetch an input: the reporter's claim. (What read_inputs reads and keeps.)
class AttemptSerializer(serializers.Serializer):
    provider = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, help_text="f0…, when one was named"
    )
    url = serializers.CharField(required=False, allow_null=True, max_length=provenance.MAX_URL)
    ok = serializers.BooleanField()
    reason = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text=f"why it failed; cut to {provenance.MAX_REASON_TEXT} characters",
    )
    bytes = serializers.IntegerField(min_value=0)
    seconds = serializers.FloatField(min_value=0)


# Where one spec input came from, as the node that ran the job reported it.
class InputRetrievalSerializer(serializers.Serializer):
    cid = serializers.CharField()
    path = serializers.CharField()
    verified = serializers.ChoiceField(
        choices=list(provenance.VERIFIED),
        help_text="store: from the node's own store; piece: the whole piece against its "
        "CommP; blocks: block by block against the DAG's CIDs",
    )
    provider = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    url = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=provenance.MAX_URL,
        help_text="what served the bytes used",
    )
    bytes = serializers.IntegerField(min_value=0)
    seconds = serializers.FloatField(min_value=0)
    attempts = AttemptSerializer(
        many=True,
        required=False,
        help_text=f"every try, in order: at most {provenance.MAX_ATTEMPTS}",
    )


@extend_schema_field(InputRetrievalSerializer(many=True, allow_null=True))
class InputsField(serializers.Field):
    """A report's `inputs`, one object per spec input in the spec's order (at most
    provenance.MAX_INPUTS), read by provenance.read_inputs: the one set of rules the bundled
    executor's results go through too."""

    def to_internal_value(self, data: Any) -> list[dict[str, Any]] | None:
        return provenance.read_inputs(data)

    def to_representation(self, value: Any) -> Any:
        return value


class JobInputSerializer(serializers.Serializer):
    cid = serializers.CharField()
    path = serializers.CharField()
    blessed = serializers.BooleanField(allow_null=True)
    status = TextOrNull(allow_null=True)
    as_of_epoch = serializers.IntegerField(allow_null=True)
    blessed_by = serializers.SerializerMethodField(
        help_text='the claims and deals that made it blessed when the job ran: "claim 7", "deal 12"'
    )
    retrieval = serializers.SerializerMethodField(
        help_text="where it was fetched from, as the node reported it; null when not reported"
    )

    def get_blessed_by(self, item: Any) -> list[str]:
        return provenance.blessed_by(item)

    @extend_schema_field(InputRetrievalSerializer(allow_null=True))
    def get_retrieval(self, item: Any) -> dict[str, Any] | None:
        return provenance.retrieval_of(item)


# A job's result: what a node reports, and what a job shows.
class JobResultSerializer(Body):
    error_code = "invalid_result"
    cid_error_code = "invalid_result"

    result_cid = CidField()
    exit_code = Integer()
    stdout_cid = CidField()
    stderr_cid = CidField()
    outputs_cid = CidField()
    size_bytes = Integer(min_value=0)
    runtime_ms = Integer(min_value=0)
    provider = TextOrNull(
        required=False, allow_null=True, allow_blank=True, validators=[provider_address]
    )
    inputs = InputsField(required=False, allow_null=True)
    receipt = ReceiptSerializer(
        required=False, allow_null=True, help_text="what ran and how it ended (docs/jobs.md)"
    )


# A job's result as a job shows it: its parts as read from the result when it is in this
# dashboard's store (parts_checked), else as the node reported them; for a result imported
# from a Bacalhau orchestrator and not in the store, only the root CID is known.
class JobResultOutSerializer(serializers.Serializer):
    result_cid = serializers.CharField()
    exit_code = serializers.IntegerField()
    stdout_cid = TextOrNull(allow_null=True)
    stderr_cid = TextOrNull(allow_null=True)
    outputs_cid = TextOrNull(allow_null=True)
    size_bytes = serializers.IntegerField(allow_null=True, help_text="null: not measured")
    runtime_ms = serializers.IntegerField()
    provider = TextOrNull(allow_null=True)
    receipt = ReceiptSerializer(allow_null=True, help_text="as the node that ran it says")
    parts_checked = serializers.BooleanField(
        help_text="stdout, stderr, exit code and outputs were read from the result itself; "
        "false: the result is not in this dashboard's store and they are as reported"
    )


class BacalhauOriginSerializer(serializers.Serializer):
    orchestrator = serializers.CharField(source="orchestrator.url")
    job_id = serializers.CharField(source="bacalhau_job_id")
    execution_id = serializers.CharField()
    node_id = serializers.CharField()


class ModerationSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=Job.Moderation.values, source="moderation_state")
    datacap_bytes = serializers.IntegerField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)


class JobSerializer(serializers.Serializer):
    id = serializers.CharField()
    state = serializers.ChoiceField(choices=Job.State.values)
    engine = serializers.ChoiceField(choices=Job.Engine.values)
    spec = serializers.DictField()
    external = serializers.BooleanField()
    node = serializers.CharField(source="node.name", allow_null=True)
    annotations = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = TextOrNull(allow_null=True)
    outcome = TextOrNull(
        allow_null=True,
        help_text="how its run ended: completed, failed_in_program, fuel_exhausted, timed_out,"
        " stack_exhausted or host_failure (the last three another machine may not repeat);"
        " null until it ended, or when it never ran",
    )
    attempts = serializers.IntegerField()
    inputs_blessed = serializers.BooleanField(allow_null=True)
    inputs = JobInputSerializer(many=True)
    result = JobResultOutSerializer(allow_null=True)
    moderation = ModerationSerializer(source="*")
    bacalhau = serializers.SerializerMethodField(
        help_text="where a job imported from a Bacalhau orchestrator ran; null for others"
    )
    reexecution = serializers.SerializerMethodField()
    novelty = serializers.SerializerMethodField(
        help_text="how much of the result is new data; null while the job has no result"
    )

    @extend_schema_field(NoveltySerializer(allow_null=True))
    def get_novelty(self, job: Job) -> dict[str, Any] | None:
        found = novelty_of(job)
        return NoveltySerializer(found).data if found is not None else None

    @extend_schema_field(BacalhauOriginSerializer(allow_null=True))
    def get_bacalhau(self, job: Job) -> dict[str, Any] | None:
        origin = getattr(job, "bacalhau", None) if job.external else None
        return BacalhauOriginSerializer(origin).data if origin is not None else None

    @extend_schema_field(ReexecutionSerializer)
    def get_reexecution(self, job: Job) -> dict[str, Any]:
        return ReexecutionSerializer(reexecutions.summary(job)).data


# What verifying a job risks (dashboard/moderation/risks.py).
class RisksSerializer(serializers.Serializer):
    inputs = serializers.ChoiceField(
        choices=["all", "some", "none", "no_inputs"], help_text="which inputs were blessed"
    )
    blessed_by = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='per blessed input CID, the claims and deals behind it: "claim 7", "deal 12"',
    )
    exit_code = serializers.IntegerField(allow_null=True, help_text="null: no result")
    reexecution = serializers.CharField(help_text="the latest re-execution's state")
    node_caught = serializers.BooleanField(
        help_text="the node's key has a WASM job whose latest re-execution mismatched"
    )
    result_measured = serializers.BooleanField(help_text="the result's CAR was measured here")
    novelty = NoveltySerializer(allow_null=True, help_text="how new the result is; null: no result")
    datacap_suggested = serializers.IntegerField(allow_null=True)
    datacap_asked = serializers.IntegerField(
        allow_null=True, help_text="what a verification granted; null before one"
    )
    open = serializers.ListField(
        child=serializers.ChoiceField(choices=list(RISK_LABELS)),
        help_text="the risks a verification must name in accept_risks",
    )


# The detail view only: pieces, storage and risks cost queries per job, which a listing must
# not.
class JobDetailSerializer(JobSerializer):
    pieces = PieceRefSerializer(many=True)
    storage = serializers.SerializerMethodField()
    risks = serializers.SerializerMethodField()

    @extend_schema_field(RisksSerializer)
    def get_risks(self, job: Job) -> dict[str, Any]:
        return RisksSerializer(job_risks(job).as_dict()).data

    @extend_schema_field(ChainStorageSerializer)
    def get_storage(self, job: Job) -> dict[str, Any]:
        return chain_storage(job)


# The query string of GET /jobs (its schema is LIST_PARAMETERS in apis.py); other parameters
# are ignored.
class JobListQuerySerializer(Body):
    ignores_unknown = True

    state = serializers.ChoiceField(choices=Job.State.values, required=False)
    engine = serializers.ChoiceField(choices=Job.Engine.values, required=False)
    # Nothing stored is longer, and SQLite refuses a LIKE pattern over 50,000 bytes.
    node = Text(required=False, allow_blank=True, max_length=NODE_NAME_LONGEST)
    annotation = Text(required=False, allow_blank=True, max_length=MAX_ANNOTATION_LENGTH)
    blessed = serializers.ChoiceField(choices=["true", "false"], required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    cursor = Text(required=False, max_length=MAX_CURSOR_LENGTH)

    def validate_blessed(self, value: str) -> bool:
        return value == "true"

    def validate_cursor(self, value: str) -> tuple[datetime, str]:
        return decode_cursor(value)


class JobPageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True, help_text="URL of the next page")
    results = JobSerializer(many=True)


class DecisionSerializer(Body):
    error_code = "invalid_decision"

    decision = serializers.ChoiceField(
        choices=["verify", "reject", "confirm", "approve"],
        help_text="confirm: keep a verification after a re-execution mismatched "
        "(reexecution.mismatch_review), with a reason; approve: a second moderator approves "
        "a verification awaiting_second_approval",
    )
    datacap_bytes = DataCapField(
        source="datacap",
        required=False,
        allow_null=True,
        min_value=1,
        help_text='bytes (required to verify); the API also takes text like "32 GiB"',
    )
    reason = Text(
        required=False,
        allow_blank=True,
        help_text="required to reject or confirm, and to verify accepting risks",
    )
    accept_risks = serializers.ListField(
        child=serializers.ChoiceField(choices=list(RISK_LABELS)),
        required=False,
        default=list,
        help_text="to verify: every risk in the job's risks.open (409 risks_not_accepted)",
    )
