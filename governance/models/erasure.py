"""Erasure requests (GDPR Art. 17) and what their execution records, one row per fact.

The data subject is known here only by the keyed hash of their normalised id (``subject_key``,
the subject index's HMAC): it is the one column that ties a request to a person, it is never
shown, logged or ledgered, and it is purged once the request is final and its retention has
passed. Every row is written by ``governance.services.erasure``, which ledgers each change in
the same transaction with counts, hashes and ids of Custos objects only.
"""

from django.conf import settings
from django.db import models

from ..rules import erasure as rules
from .base import GovernedModel

_STATE_CHOICES = [(s.value, s.value.replace("_", " ")) for s in rules.State]


class ErasureRequest(GovernedModel):
    """One person's request to be erased, from receipt to completion in backups or refusal.

    Institution-wide: the Data Protection Officer handles every unit's data. Reading needs the
    ``view_erasurerequest`` permission (selectors.erasure checks it); changing it, the erasure
    permissions the services require.
    """

    institution_wide = True

    reference = models.CharField(max_length=20, unique=True, help_text="Opaque reference, e.g. ER-2026-0007.")
    ground = models.CharField(max_length=1, choices=[(g.value, g.article) for g in rules.Ground])
    subject_key = models.CharField(
        max_length=64, null=True, blank=True, editable=False,
        help_text="HMAC-SHA256 of the normalised subject id; never shown. Purged after the retention period.",
    )
    state = models.CharField(max_length=20, choices=_STATE_CHOICES, default=rules.State.RECEIVED)
    received_at = models.DateTimeField()
    first_due_at = models.DateTimeField()
    due_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)
    # identity verification: who, when, and where the evidence is kept (outside Custos)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    evidence_reference = models.CharField(max_length=rules.EVIDENCE_REFERENCE_MAX_LENGTH, blank=True)
    # Art. 12(3) extension
    extension_months = models.PositiveSmallIntegerField(default=0)
    extension_reason = models.TextField(blank=True)
    extension_recorded_at = models.DateTimeField(null=True, blank=True)
    extension_notified_at = models.DateTimeField(null=True, blank=True)
    # the plan and its approval
    plan = models.JSONField(null=True, blank=True, help_text="The plan as rules.erasure.Plan.as_json().")
    plan_sha256 = models.CharField(max_length=64, blank=True)
    planned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    planned_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # the outcome
    refusal_ground = models.CharField(max_length=30, blank=True, choices=[(g.value, g.value) for g in rules.RefusalGround])
    outcome = models.TextField(blank=True, help_text="What the person is told: the refusal notice or what was erased.")
    error = models.TextField(blank=True, help_text="Why execution stopped (it resumes).")
    absence_proof = models.JSONField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    backups_unreadable_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When the request reached a final state.")

    class Meta:
        ordering = ["due_at", "reference"]
        permissions = [
            ("verify_erasurerequest", "Can record the identity verification of an erasure request"),
            ("plan_erasurerequest", "Can plan an erasure request"),
            ("approve_erasurerequest", "Can approve the plan of an erasure request"),
            ("execute_erasurerequest", "Can start the execution of an erasure request"),
            ("extend_erasurerequest", "Can extend the deadline of an erasure request"),
            ("refuse_erasurerequest", "Can refuse an erasure request"),
        ]
        constraints = [
            # One open request per person: a second is refused (409) naming the open one.
            models.UniqueConstraint(
                fields=["subject_key"],
                condition=models.Q(state__in=sorted(s.value for s in rules.OPEN_STATES)),
                name="erasurerequest_one_open_per_subject",
            ),
        ]

    def __str__(self):
        return self.reference

    @property
    def deadline(self) -> rules.Deadline:
        return rules.deadline(self.received_at, self.extensions)

    @property
    def extensions(self) -> list[rules.Extension]:
        if not self.extension_months:
            return []
        return [rules.Extension(self.extension_months, self.extension_reason, self.extension_recorded_at,
                                self.extension_notified_at)]

    def approved_plan(self) -> rules.Plan | None:
        return plan_from_json(self.plan) if self.plan else None


def plan_from_json(data: dict) -> rules.Plan:
    """Rebuild the rules' Plan from its stored JSON (the inverse of ``Plan.as_json``)."""
    return rules.Plan(
        reference=data["reference"],
        snapshots=tuple(
            rules.PlannedSnapshot(**{**s, "action": rules.SnapshotAction(s["action"]),
                                     "hold_ids": tuple(s["hold_ids"]), "gate_run_ids": tuple(s["gate_run_ids"])})
            for s in data["snapshots"]
        ),
        recipient_tasks=tuple(
            rules.RecipientTask(**{**t, "storage": rules.ExternalStorage(t["storage"])}) for t in data["recipient_tasks"]
        ),
        reviews=tuple(
            rules.ReviewToOpen(**{**r, "training_run_ids": tuple(r["training_run_ids"]),
                                  "dataset_version_ids": tuple(r["dataset_version_ids"]),
                                  "release_ids": tuple(r["release_ids"])})
            for r in data["reviews"]
        ),
        gate_results=tuple(
            rules.PlannedGateResult(**{**g, "action": rules.GateResultAction(g["action"]), "hold_ids": tuple(g["hold_ids"])})
            for g in data["gate_results"]
        ),
        outcome=rules.State(data["outcome"]),
        warnings=tuple(data["warnings"]),
    )


class ErasureSnapshot(GovernedModel):
    """The erasure of one stored snapshot for one request: each step's fact, committed by that step.

    The redacted successor is a new DatasetVersion of the same dataset (same format, new data
    key); it is linked here to its predecessor and to the request. The predecessor keeps its
    SHA-256 and every ledger entry about it; only its data key is destroyed.
    """

    unit_path = "predecessor__dataset__business_unit"

    request = models.ForeignKey(ErasureRequest, on_delete=models.PROTECT, related_name="snapshots")
    predecessor = models.ForeignKey(
        "governance.DatasetVersion", on_delete=models.PROTECT, related_name="erasures"
    )
    action = models.CharField(max_length=30, choices=[(a.value, a.value.replace("_", " ")) for a in rules.SnapshotAction])
    rows_to_remove = models.PositiveIntegerField(default=0)
    successor = models.OneToOneField(
        "governance.DatasetVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="redacted_from"
    )
    successor_written = models.BooleanField(default=False)
    verification = models.CharField(
        max_length=10, choices=[(v.value, v.value) for v in rules.Verification], default=rules.Verification.PENDING
    )
    verification_problems = models.JSONField(default=list, blank=True)
    successor_committed = models.BooleanField(default=False)
    predecessor_key_destroyed = models.BooleanField(default=False)
    key_destroyed_at = models.DateTimeField(null=True, blank=True)
    done = models.BooleanField(default=False)
    kept = models.BooleanField(default=False, help_text="Kept under a legal hold.")
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["request", "predecessor"]
        constraints = [
            models.UniqueConstraint(fields=["request", "predecessor"], name="erasuresnapshot_unique"),
        ]

    @property
    def progress(self) -> rules.SnapshotProgress:
        return rules.SnapshotProgress(
            successor_written=self.successor_written,
            verification=self.verification,
            successor_committed=self.successor_committed,
            predecessor_key_destroyed=self.predecessor_key_destroyed,
        )


class ErasureReview(GovernedModel):
    """A model version trained on erased data: a validator decides retrain, retain or retire.

    While open (or decided retrain/retire) no release of the version can be approved.
    """

    unit_path = "model_version__model__business_unit"

    request = models.ForeignKey(ErasureRequest, on_delete=models.PROTECT, related_name="reviews")
    model_version = models.ForeignKey("governance.ModelVersion", on_delete=models.PROTECT, related_name="erasure_reviews")
    state = models.CharField(max_length=10, choices=[(s.value, s.value) for s in rules.ReviewState],
                             default=rules.ReviewState.OPEN)
    decision = models.CharField(max_length=10, blank=True, choices=[(d.value, d.value) for d in rules.ReviewDecision])
    justification = models.TextField(blank=True)
    message = models.TextField(blank=True, help_text="What the plan says about the version.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-opened_at"]
        permissions = [("decide_erasurereview", "Can decide the erasure review of a model version")]
        constraints = [
            models.UniqueConstraint(fields=["request", "model_version"], name="erasurereview_unique"),
        ]

    def as_rule(self) -> rules.ErasureReview:
        return rules.ErasureReview(self.request.reference, self.model_version_id, self.state, self.decision or None)


class RecipientTask(GovernedModel):
    """Art. 19: a dataset Custos only references; its owner erases the person there and says so."""

    unit_path = "dataset_version__dataset__business_unit"

    request = models.ForeignKey(ErasureRequest, on_delete=models.PROTECT, related_name="recipient_tasks")
    dataset_version = models.ForeignKey("governance.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    storage = models.CharField(max_length=12, choices=[(s.value, s.value) for s in rules.ExternalStorage])
    message = models.TextField()
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    what_was_done = models.TextField(blank=True)

    class Meta:
        ordering = ["request", "dataset_version"]
        permissions = [("close_recipienttask", "Can close a recipient task of an erasure request")]
        constraints = [
            models.UniqueConstraint(fields=["request", "dataset_version"], name="recipienttask_unique"),
        ]


class LegalHold(GovernedModel):
    """An Art. 17(3) exception: keeps one snapshot or a whole dataset from erasure once confirmed.

    Recorded by one officer, confirmed by a second (rules.erasure.check_hold_confirmation).
    """

    institution_wide = True

    scope = models.CharField(max_length=10, choices=[(s.value, s.value) for s in rules.HoldScope])
    dataset_version = models.ForeignKey(
        "governance.DatasetVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="legal_holds"
    )
    dataset = models.ForeignKey(
        "governance.Dataset", null=True, blank=True, on_delete=models.PROTECT, related_name="legal_holds"
    )
    request = models.ForeignKey(
        ErasureRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="legal_holds",
        help_text="Limits the hold to one request (a claim by or against that person).",
    )
    ground = models.CharField(max_length=1, choices=[(g.value, g.article) for g in rules.ExceptionGround])
    justification = models.TextField()
    review_on = models.DateField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-recorded_at"]
        permissions = [
            ("confirm_legalhold", "Can confirm a legal hold (a second officer)"),
            ("release_legalhold", "Can release a legal hold"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(scope="snapshot", dataset_version__isnull=False, dataset__isnull=True))
                | (models.Q(scope="dataset", dataset__isnull=False, dataset_version__isnull=True)),
                name="legalhold_one_target",
            ),
        ]

    def as_rule(self) -> rules.LegalHold:
        return rules.LegalHold(
            hold_id=self.pk,
            scope=self.scope,
            target_id=self.dataset_version_id if self.scope == rules.HoldScope.SNAPSHOT else self.dataset_id,
            ground=self.ground,
            justification=self.justification,
            review_on=self.review_on,
            recorded_by=self.recorded_by_id,
            recorded_at=self.recorded_at,
            request_reference=self.request.reference if self.request_id else None,
            confirmed_by=self.confirmed_by_id,
            confirmed_at=self.confirmed_at,
            released_at=self.released_at,
        )
