"""The dashboard's own tables: machine API keys, moderator roles and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from chain_scanner.models import LeasedPasses

# The longest reason kept: a moderator's for a decision, or why a job or a run failed.
MAX_REASON = 4000


class Role(models.TextChoices):
    VIEWER = "viewer"
    MODERATOR = "moderator"
    ADMIN = "admin"


class ModeratorProfile(models.Model):
    """What a person may do in the dashboard. A user without one is an outsider."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderator"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class ApiKey(models.Model):
    """A scoped machine key. Only its prefix and an HMAC of the secret part are stored."""

    class Scope(models.TextChoices):
        NODE = "node", "compute node"
        NOTARY = "notary"
        SUBMITTER = "submitter"
        MODERATOR = "moderator"
        # A Bacalhau node's job-selection probe, whose key rides in its URL: nothing else.
        PROBE = "probe", "Bacalhau probe"

    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    # The storage provider a compute node's results live with (node keys only).
    provider = models.CharField(max_length=32, blank=True, default="")
    # The moderator account a moderator-scoped key acts as.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_keys",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # A node key that offers to re-execute other nodes' jobs (dashboard/reexecution/).
    verifier = models.BooleanField(default=False)
    # Bacalhau job-selection probes answered for this probe or node key (bacalhau/probe.py).
    probe_count = models.PositiveBigIntegerField(default=0)
    probe_last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(scope="moderator") | models.Q(user__isnull=False),
                name="moderator_key_has_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope}, {self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class SignInThrottle(models.Model):
    """Sign-in attempts counted per account name or client address
    (dashboard/accounts/sign_in.py)."""

    key = models.CharField(max_length=100, primary_key=True)
    count = models.PositiveIntegerField()
    until = models.DateTimeField()  # the window's end

    def __str__(self) -> str:
        return f"{self.key}: {self.count} until {self.until:%H:%M:%S}"


class AuditEvent(models.Model):
    """Append-only record of every decision, revocation, key change and award."""

    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ValueError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError("audit events are append-only")


class Job(models.Model):
    """A WASM or Docker job: its spec, where it ran, what it produced, and its moderation.

    Bundled jobs run on our executor (node is null) and carry a lease while they run, so a
    job whose worker died goes back to the queue. External jobs are run by a compute node
    that registered them under its own id; their node is the key that registered them.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Engine(models.TextChoices):
        WASM = "wasm"
        DOCKER = "docker"

    class Moderation(models.TextChoices):
        PENDING = "pending"
        VERIFIED = "verified"
        REJECTED = "rejected"
        REVOKED = "revoked"
        # Verified for more than DATACAP_SECOND_APPROVAL_BYTES: waits for a second moderator.
        AWAITING_SECOND_APPROVAL = "awaiting_second_approval"

    id = models.CharField(primary_key=True, max_length=100)
    engine = models.CharField(max_length=8, choices=Engine.choices)
    spec = models.JSONField()
    # SHA-256 of the canonical spec: what "the same body" means for idempotent registration.
    spec_digest = models.CharField(max_length=64)
    external = models.BooleanField(default=False)
    owner = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="owned_jobs"
    )
    node = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="node_jobs"
    )
    annotations = models.JSONField(default=list)
    # "|a|b|": annotations in a form every database can filter on with a LIKE.
    annotation_index = models.TextField(blank=True, default="")
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # How its run ended (executor/outcomes.py): "completed" with a result, or why it gave
    # none; empty until then, and for a job that never ran (an invalid spec, a cancel).
    outcome = models.CharField(max_length=20, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=100, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # True when every input was blessed when the job ran (null until it ran, or no inputs).
    inputs_blessed = models.BooleanField(null=True)
    moderation_state = models.CharField(
        max_length=24, choices=Moderation.choices, default=Moderation.PENDING
    )
    datacap_bytes = models.BigIntegerField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # What its storage on chain needs a moderator to look at ("other_provider",
    # "more_on_chain_than_awarded", comma-separated), kept by notary.refresh_chain_flags so
    # that lists can show it without reading the chain tables per row.
    chain_flags = models.CharField(max_length=100, blank=True, default="", db_index=True)
    # "match" or "mismatch": what its latest re-execution that compared a result found
    # ("" before one did; dashboard/reexecution/). Kept beside the job so that the
    # queue, the moderation rule and the node records read it without a join; a run queued
    # again does not clear it.
    reexecution_verdict = models.CharField(max_length=8, blank=True, default="", db_index=True)
    # A re-execution mismatched after the job was verified: the notary answers rerun_mismatch
    # and no award is taken until a moderator confirms the verification or it is revoked.
    mismatch_review = models.BooleanField(default=False, db_index=True)

    class Meta:
        indexes = [
            # The moderation queue: finished jobs awaiting a decision, blessed inputs first.
            models.Index(
                fields=["moderation_state", "state", "-inputs_blessed", "-finished_at"],
                name="job_moderation_queue",
            ),
            models.Index(fields=["-created_at", "-id"], name="job_recent"),
            models.Index(fields=["state", "created_at"], name="job_state_created"),
            models.Index(fields=["state", "lease_until"], name="job_state_lease"),
            models.Index(fields=["owner", "-created_at"], name="job_owner_recent"),
            models.Index(fields=["node", "-created_at"], name="job_node_recent"),
        ]

    def __str__(self) -> str:
        return f"job {self.id} ({self.engine}, {self.state})"


class JobInput(models.Model):
    """An input CID mounted at a path, with its FIL+ status when the job ran."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="inputs")
    position = models.PositiveSmallIntegerField()
    cid = models.CharField(max_length=200, db_index=True)
    path = models.CharField(max_length=1000)
    blessed = models.BooleanField(null=True)
    status = models.CharField(max_length=12, blank=True, default="")
    sources = models.JSONField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    as_of_epoch = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="job_input_position")
        ]

    def __str__(self) -> str:
        return f"{self.cid}:{self.path}"


class JobResult(models.Model):
    """What a job produced; written once, by the one result-recording service."""

    job = models.OneToOneField(
        Job, primary_key=True, on_delete=models.CASCADE, related_name="result"
    )
    result_cid = models.CharField(max_length=200, db_index=True)
    exit_code = models.BigIntegerField()
    stdout_cid = models.CharField(max_length=200)
    stderr_cid = models.CharField(max_length=200)
    outputs_cid = models.CharField(max_length=200)
    # Null (and the three CIDs above blank) for a result imported from a Bacalhau
    # orchestrator that is not in this dashboard's store: nothing here measured it.
    size_bytes = models.BigIntegerField(null=True, blank=True)
    # The result's CAR as measured from this dashboard's store; null when it is not there.
    car_bytes = models.BigIntegerField(null=True, blank=True)
    runtime_ms = models.BigIntegerField()
    provider = models.CharField(max_length=32, blank=True, default="")
    # Where each input was fetched from, as the node reported it (dashboard/jobs/provenance.py):
    # one object per spec input, in the spec's order; null when the report said nothing.
    inputs = models.JSONField(null=True, blank=True)
    # What ran and how it ended, as the node that ran it says (docs/jobs.md, "Receipts");
    # null when it said nothing.
    receipt = models.JSONField(null=True, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.job_id} -> {self.result_cid}"

    @property
    def parts_checked(self) -> bool:
        """Its stdout, stderr, exit code and outputs were read from the result itself
        (jobs.record_result does so whenever the result is in the store, which is also when
        its CAR is measured); False: they are as the node reported them, not checked."""
        return self.car_bytes is not None


class ProviderRetrieval(models.Model):
    """How fetching inputs from one storage provider went, as nodes reported it in their
    results' `inputs` (a reporter's claim, not something this dashboard saw): keyed by the
    provider (`f0…`), or by the URL's origin for a location no provider was named for.
    Updated once per recorded result (dashboard/jobs/provenance.py); `bytes` and `seconds`
    are those of the successful attempts, so their ratio is the rate the data came at."""

    key = models.CharField(max_length=300, primary_key=True)
    provider = models.CharField(max_length=32, blank=True, default="")
    url = models.CharField(max_length=2048, blank=True, default="")  # the last one tried
    tries = models.BigIntegerField(default=0)
    successes = models.BigIntegerField(default=0)
    failures = models.BigIntegerField(default=0)
    failure_reasons = models.JSONField(default=dict, blank=True)  # reason → count, bounded
    bytes = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"retrievals from {self.key}"


class IndexedContent(models.Model):
    """Stored content whose chunk fingerprints are in the copy index (ContentChunk), by the
    CID it was named with: a job's input, an upload or a job's result. Written only by
    dashboard/content/index.py; novelty looks results up in it."""

    class Origin(models.TextChoices):
        INPUT = "input"
        UPLOAD = "upload"
        RESULT = "result"

    class State(models.TextChoices):
        PENDING = "pending"
        INDEXED = "indexed"
        MISSING = "missing"  # not wholly in the store when it was looked for
        FAILED = "failed"  # too large, or unreadable: `error` says which

    cid = models.CharField(max_length=200, unique=True)
    origin = models.CharField(max_length=8, choices=Origin.choices)
    state = models.CharField(
        max_length=8, choices=State.choices, default=State.PENDING, db_index=True
    )
    bytes = models.BigIntegerField(default=0)  # read to index it, decompressed views included
    # fingerprints written (distinct within each batch of 5000; the index keeps each once)
    chunks = models.BigIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    noted_at = models.DateTimeField(auto_now_add=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.origin} {self.cid} ({self.state})"


class ContentChunk(models.Model):
    """One distinct fingerprint of indexed content (dashboard/content/fingerprints.py). The
    unique index on (fingerprint, content) is also the lookup's index."""

    fingerprint = models.BigIntegerField()
    content = models.ForeignKey(
        IndexedContent, on_delete=models.CASCADE, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["fingerprint", "content"], name="content_chunk_once")
        ]

    def __str__(self) -> str:
        return f"{self.fingerprint:#x} in {self.content_id}"


class Novelty(models.Model):
    """How much of a job's result is new data: queued when the result is recorded, measured
    by a worker under a lease (dashboard/novelty/), never on a request."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        MEASURED = "measured"
        NOT_IN_STORE = "not_in_store"  # measured once the result is in this dashboard's store
        FAILED = "failed"

    job = models.OneToOneField(
        Job, primary_key=True, on_delete=models.CASCADE, related_name="novelty"
    )
    result_cid = models.CharField(max_length=200)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=100, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    novel_bytes = models.BigIntegerField(null=True, blank=True)
    total_bytes = models.BigIntegerField(null=True, blank=True)
    # [{cid, kind: input|blessed|result, job_id, bytes}], most bytes first, at most MAX_SOURCES
    sources = models.JSONField(null=True, blank=True)
    method = models.CharField(max_length=100, blank=True, default="")
    measured_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"novelty of {self.job_id}: {self.state}"


class Reexecution(models.Model):
    """One run of a finished job's spec again on the bundled executor, to check the result
    its node reported: the same spec gives the same result CID when the engine is
    deterministic (WASM). Queued, claimed under a lease like a bundled job, then finished."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        MATCH = "match"
        MISMATCH = "mismatch"
        FAILED = "failed"
        # Never run: the spec asks for more than the re-execution limits, or its node (client,
        # orchestrator) used up its hourly quota. `refusal` says which.
        NOT_VERIFIABLE = "not_verifiable"

    class Refusal(models.TextChoices):
        LIMITS = "limits"
        QUOTA = "quota"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="reexecutions")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    refusal = models.CharField(max_length=8, choices=Refusal.choices, blank=True, default="")
    # Why it was queued: policy (REEXECUTE_POLICY=all), sampled, node_mismatched, requested.
    reason = models.CharField(max_length=20)
    requested_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=100, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    ran_by = models.CharField(max_length=100, blank=True, default="")  # the worker that ran it
    result_cid = models.CharField(max_length=200, blank=True, default="")
    exit_code = models.BigIntegerField(null=True, blank=True)
    runtime_ms = models.BigIntegerField(null=True, blank=True)
    # Where a mismatch's two result directories differ: [{"path", "reported", "rerun"}].
    diff = models.JSONField(null=True, blank=True)
    receipt = models.JSONField(null=True, blank=True)  # the re-run's (docs/jobs.md, "Receipts")
    error = models.TextField(blank=True, default="")
    # When its runner's lease is taken back whatever it renewed: set at each claim to the
    # start plus its time limit plus REEXECUTE_GRACE_S.
    deadline = models.DateTimeField(null=True, blank=True)
    # Times the embedded worker stopped it for a waiting job (no attempt counted).
    preemptions = models.PositiveIntegerField(default=0)
    # Only the bundled executor may run it: asked again after a verifier's mismatch, or taken
    # back from a verifier that overran its deadline.
    bundled_only = models.BooleanField(default=False)
    # The verifier node that holds it or ran it (null: the bundled executor).
    verifier = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="verified_runs"
    )
    # A verifier node that held it past its deadline.
    overrun_by = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="overrun_runs"
    )

    class Meta:
        indexes = [
            models.Index(fields=["state", "created_at"], name="reexecution_state_created"),
            models.Index(fields=["state", "lease_until"], name="reexecution_state_lease"),
            models.Index(fields=["job", "-created_at"], name="reexecution_job_recent"),
            # The hourly quotas count the runs queued lately.
            models.Index(fields=["created_at"], name="reexecution_created"),
        ]

    def __str__(self) -> str:
        return f"re-execution {self.pk} of {self.job_id} ({self.state})"


class Decision(models.Model):
    """One moderation act on a job: verify (with DataCap), reject, or revoke a verification.

    The job row holds the current moderation state; these rows are its history.
    """

    class Action(models.TextChoices):
        VERIFY = "verify"
        REJECT = "reject"
        REVOKE = "revoke"
        # A moderator keeps a verification after a re-execution mismatched (Job.mismatch_review).
        CONFIRM = "confirm"
        # A second moderator approves a verification awaiting second approval.
        APPROVE = "approve"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="decisions")
    action = models.CharField(max_length=8, choices=Action.choices)
    datacap_bytes = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    actor = models.CharField(max_length=200)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["job", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.job_id} {self.action} by {self.actor}"


class Award(models.Model):
    """DataCap the notary awarded to one deal: a job's result piece, or an FRC-0058 aggregate
    holding several jobs' result pieces. Its shares say which jobs' DataCap it spent; its
    chain state, kept by notary.awards.follow_awards, says whether the deal landed."""

    class ChainState(models.TextChoices):
        AWAITING = "awaiting"  # no claim or verified deal yet, within the landing window
        LANDED = "landed"  # claimed (or a verified deal activated) by the awarded provider
        MISMATCHED_PROVIDER = "mismatched_provider"  # claimed by another provider only
        NOT_LANDED = "not_landed"  # nothing on chain within the landing window
        REMOVED = "removed"  # the claim removed, or the deal slashed, before its term

    piece_cid = models.CharField(max_length=200)
    provider = models.CharField(max_length=32)
    piece_size = models.BigIntegerField()
    aggregate = models.BooleanField(default=False)  # the piece is an aggregate of job pieces
    notary = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    # The finalized epoch the scanner had reached when the award was taken: the landing
    # window (AWARD_LANDING_EPOCHS) counts from it.
    epoch = models.BigIntegerField(default=0)
    chain_state = models.CharField(
        max_length=20, choices=ChainState.choices, default=ChainState.AWAITING, db_index=True
    )
    # What the state rests on: the claim or deal, and its provider (another one when
    # mismatched_provider); empty while awaiting or not_landed.
    claim_id = models.BigIntegerField(null=True, blank=True)
    deal_id = models.BigIntegerField(null=True, blank=True)
    chain_provider = models.CharField(max_length=100, blank=True, default="")  # as Deal.provider
    checked_epoch = models.BigIntegerField(default=0)  # when the state was last worked out

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["piece_cid", "provider"], name="award_piece_provider")
        ]
        indexes = [models.Index(fields=["-created_at", "-id"], name="award_recent")]

    def __str__(self) -> str:
        return f"{self.piece_size} B to {self.provider} for {self.piece_cid}"


class AwardShare(models.Model):
    """The DataCap of one job that one award spent: all of the award for a job's own piece;
    for an aggregate, the remaining DataCap of each verified sub-piece, up to the aggregate's
    size. A job's awarded bytes are the sum of its shares."""

    award = models.ForeignKey(Award, on_delete=models.CASCADE, related_name="shares")
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="award_shares")
    piece = models.ForeignKey("JobPiece", on_delete=models.PROTECT, related_name="award_shares")
    bytes = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["award", "job"], name="award_share_once")]

    def __str__(self) -> str:
        return f"{self.bytes} B of job {self.job_id} in award {self.award_id}"


class JobPiece(models.Model):
    """The piece a node will store for a job's result: checked by recomputing its CommP."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="pieces")
    piece_cid = models.CharField(max_length=200, db_index=True)
    piece_size = models.BigIntegerField()
    payload_cid = models.CharField(max_length=200)
    node = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "piece_cid"], name="job_piece_once")]

    def __str__(self) -> str:
        return f"{self.job_id}: {self.piece_cid} ({self.piece_size} B)"


class PieceInAggregate(models.Model):
    """A registered piece proven inside an FRC-0058 aggregate (executor/aggregate.py): the
    aggregate is the piece a storage provider's deal, allocation and claim name."""

    piece = models.ForeignKey(JobPiece, on_delete=models.CASCADE, related_name="aggregates")
    aggregate_cid = models.CharField(max_length=200, db_index=True)
    aggregate_size = models.BigIntegerField()
    proof = models.JSONField()  # as registered, and verified then
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["piece", "aggregate_cid"], name="piece_aggregate_once")
        ]

    def __str__(self) -> str:
        return f"{self.piece.piece_cid} in {self.aggregate_cid}"


class BacalhauNode(models.Model):
    """A Bacalhau compute node, by the orchestrator that reports it and its node id there:
    the storage provider its results are stored with, as an admin maps it. Node ids are only
    names an orchestrator gives: another orchestrator may report a node of the same id, and
    that is another node here. Results of an unmapped node have no holder, so the notary
    cannot award DataCap to them (it says why)."""

    orchestrator = models.ForeignKey("BacalhauOrchestrator", on_delete=models.PROTECT)
    node_id = models.CharField(max_length=200)
    provider = models.CharField(max_length=32, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["orchestrator", "node_id"], name="bacalhau_node_per_orchestrator"
            )
        ]

    def __str__(self) -> str:
        return f"{self.node_id} on {self.orchestrator} -> {self.provider or 'no provider'}"


class BacalhauOrchestrator(LeasedPasses):
    """A Bacalhau orchestrator the scanner reads jobs from (BACALHAU_ORCHESTRATORS): its
    checkpoint and lease, as the chain scanner keeps them (dashboard/bacalhau/scan.py)."""

    url = models.CharField(max_length=500, unique=True)
    # Every job modified before this (ModifyTime, unix ns) has been read.
    watermark = models.BigIntegerField(null=True, blank=True)
    # A sweep down to the watermark that a pass left unfinished (its page cap or deadline):
    # the orchestrator's token of the page to read again first ("": the first page), and the
    # newest ModifyTime the sweep has seen, the next watermark once it is done.
    resume_token = models.CharField(max_length=500, blank=True, default="")
    sweep_newest = models.BigIntegerField(null=True, blank=True)
    jobs_read = models.BigIntegerField(default=0)
    executions_imported = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return self.url


class BacalhauJob(models.Model):
    """A job seen on an orchestrator: until it is finished (or given up), each pass reads it
    again. A job whose executions could not be read, or that had more to import than the
    import quota let through, stays open; one that failed is read again at `retry_at`, and
    given up (finished, with its error) after its last attempt."""

    orchestrator = models.ForeignKey(BacalhauOrchestrator, on_delete=models.CASCADE)
    job_id = models.CharField(max_length=200)
    state = models.CharField(max_length=32)
    modify_time = models.BigIntegerField()
    finished = models.BooleanField(default=False)
    read_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # failed reads in a row
    retry_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["orchestrator", "job_id"], name="bacalhau_job_once")
        ]
        indexes = [models.Index(fields=["orchestrator", "finished"], name="bacalhau_job_open")]

    def __str__(self) -> str:
        return f"{self.job_id} ({self.state})"


class BacalhauExecution(models.Model):
    """Where an imported job came from: one completed execution of a Bacalhau job."""

    job = models.OneToOneField(
        Job, primary_key=True, on_delete=models.CASCADE, related_name="bacalhau"
    )
    orchestrator = models.ForeignKey(BacalhauOrchestrator, on_delete=models.PROTECT)
    bacalhau_job_id = models.CharField(max_length=200)
    execution_id = models.CharField(max_length=200)
    # The node's id as its orchestrator names it: the node is (orchestrator, node_id).
    node_id = models.CharField(max_length=200, db_index=True)
    # When it was imported (null: before the import quota counted imports).
    imported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["orchestrator", "execution_id"], name="bacalhau_execution_once"
            )
        ]
        indexes = [
            models.Index(fields=["orchestrator", "imported_at"], name="bacalhau_execution_quota")
        ]

    def __str__(self) -> str:
        return f"{self.bacalhau_job_id}/{self.execution_id} on {self.node_id}"


class BacalhauClient(models.Model):
    """A Bacalhau legacy client (bacalhau-sdk's RSA key, named by sha256 of its modulus)
    bound by an admin to the submitter key its jobs are submitted as."""

    client_id = models.CharField(max_length=64, unique=True)
    key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="bacalhau_clients")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.client_id[:12]}… as {self.key.name}"


class BacalhauSubmission(models.Model):
    """A job submitted through the legacy requester API: whose it is, and the spec as sent."""

    job = models.OneToOneField(
        Job, primary_key=True, on_delete=models.CASCADE, related_name="bacalhau_submission"
    )
    client = models.ForeignKey(BacalhauClient, on_delete=models.PROTECT)
    spec = models.JSONField()
    # sha256 of the submit's signature: the same signed submit again answers this job
    # (dashboard/bacalhau/legacy.py). One a job; null for jobs submitted before it was kept.
    signature = models.CharField(max_length=64, unique=True, null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.job_id} by {self.client.client_id[:12]}…"
