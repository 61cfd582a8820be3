"""Reads of the erasure work: requests for the officer, discovery for the plan, review blocks for releases.

Discovery reads the subject index and the registry without opening a snapshot. It is the
system's read (every unit): the Data Protection Officer acts across the institution, and what
they see of it is the plan — ids of Custos objects and counts, never a snapshot's content.
"""

from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, Value, When
from django.http import Http404
from django.utils import timezone

from ..models import (
    DatasetVersion,
    ErasureRequest,
    ErasureReview,
    ErasureSnapshot,
    GateRun,
    LegalHold,
    RecipientTask,
    ReleaseRequest,
    SubjectIndexEntry,
    TrainingRunInput,
)
from ..rules import erasure as rules

NEAR_DEADLINE = timedelta(days=7)


def _require_view(user):
    if user is None or not user.has_perm("governance.view_erasurerequest"):
        raise PermissionDenied("You may not read erasure requests.")


def erasure_request_list(*, user, overdue: bool = False, now=None):
    """USER's view of the erasure requests: those whose deadline runs first (overdue first), then the rest."""
    _require_view(user)
    now = now or timezone.now()
    running = sorted(s.value for s in rules.DEADLINE_STATES)
    qs = ErasureRequest.objects.for_user(user).annotate(
        running=Case(When(state__in=running, then=Value(0)), default=Value(1), output_field=IntegerField())
    ).order_by("running", "due_at", "reference")
    if overdue:
        qs = qs.filter(state__in=running, due_at__lt=now)
    return qs


def erasure_requests_near_deadline(*, user, now=None):
    """Open requests whose deadline is within a week, or past: the attention page lists them."""
    now = now or timezone.now()
    if not user.has_perm("governance.view_erasurerequest"):
        return ErasureRequest.objects.none()
    return erasure_request_list(user=user, now=now).filter(
        state__in=sorted(s.value for s in rules.DEADLINE_STATES), due_at__lte=now + NEAR_DEADLINE
    )


def erasure_request_get(*, user, reference: str) -> ErasureRequest:
    _require_view(user)
    request = ErasureRequest.objects.for_user(user).filter(reference=reference).first()
    if request is None:
        raise Http404("No such erasure request.")
    return request


def review_get(*, user, pk) -> ErasureReview:
    """An erasure review of a model version in USER's units (validators), or any (erasure readers)."""
    qs = ErasureReview.objects.unrestricted() if user.has_perm("governance.view_erasurerequest") else \
        ErasureReview.objects.for_user(user)
    review = qs.select_related("request", "model_version__model").filter(pk=pk).first()
    if review is None or not user.has_perm("governance.view_erasurereview"):
        raise Http404("No such erasure review.")
    return review


def recipient_task_get(*, user, pk) -> RecipientTask:
    _require_view(user)
    task = RecipientTask.objects.unrestricted().select_related("request").filter(pk=pk).first()
    if task is None:
        raise Http404("No such recipient task.")
    return task


def legal_hold_list(*, user):
    if not user.has_perm("governance.view_legalhold"):
        raise PermissionDenied("You may not read legal holds.")
    return LegalHold.objects.for_user(user).select_related("request", "recorded_by", "confirmed_by")


def legal_hold_get(*, user, pk) -> LegalHold:
    hold = legal_hold_list(user=user).filter(pk=pk).first()
    if hold is None:
        raise Http404("No such legal hold.")
    return hold


def hold_target(model, pk):
    """The dataset or dataset version a legal hold names (the DPO acts in every unit), or None."""
    if pk is None:
        return None
    found = model.objects.unrestricted().filter(pk=pk).first()
    if found is None:
        raise Http404(f"No such {model._meta.verbose_name}.")
    return found


def holds_for(request: ErasureRequest) -> list[rules.LegalHold]:
    """The legal holds that may bear on REQUEST: institution-wide ones and its own."""
    holds = LegalHold.objects.unrestricted().select_related("request")
    return [h.as_rule() for h in holds if h.request_id in (None, request.pk)]


def discovery(request: ErasureRequest) -> rules.Discovery:
    """What Custos holds or references of REQUEST's person, as the rules' facts (system read)."""
    key = request.subject_key
    # Two indexed queries, no model instances: the person's entries by key alone (joined in one
    # query, SQLite may walk the versions and probe the index per version: 10x slower at 10^6 rows),
    # then those versions with their keys.
    rows_in = dict(SubjectIndexEntry.objects.filter(subject_key=key).values_list("dataset_version_id", "row_count"))
    entries = [
        (dv_id, dataset_id, row_count, rows_in[dv_id], key_id, destroyed_at)
        for dv_id, dataset_id, row_count, key_id, destroyed_at in DatasetVersion.objects.unrestricted().filter(
            pk__in=list(rows_in), storage=DatasetVersion.Storage.STORED
        ).order_by("pk").values_list("pk", "dataset_id", "row_count", "snapshot_key__id", "snapshot_key__destroyed_at")
    ]
    busy = {}
    for run_id, dv_id in GateRun.objects.unrestricted().filter(
        status__in=[GateRun.Status.QUEUED, GateRun.Status.RUNNING]
    ).values_list("pk", "dataset_version_id"):
        busy.setdefault(dv_id, []).append(run_id)
    snapshots = [
        rules.StoredSnapshot(
            dataset_version_id=dv_id, dataset_id=dataset_id, row_count=max(row_count or 0, rows), subject_rows=rows,
            # A destroyed key has its time (snapshot_key_destroy sets both); no key at all is unreadable too.
            key_state=rules.KeyState.DESTROYED if key_id is None or destroyed_at is not None else rules.KeyState.LIVE,
            key_destroyed_at=destroyed_at,
            gate_runs_in_use=tuple(busy.get(dv_id, ())),
        )
        for dv_id, dataset_id, row_count, rows, key_id, destroyed_at in entries
    ]
    # What Custos only references may hold the person too: versions that declare a subject column.
    external = [
        rules.ExternalDataset(
            dataset_version_id=pk,
            storage=rules.ExternalStorage.OPENLINEAGE if storage == DatasetVersion.Storage.OPENLINEAGE
            else rules.ExternalStorage.EXTERNAL,
        )
        for pk, storage in DatasetVersion.objects.unrestricted()
        .exclude(storage=DatasetVersion.Storage.STORED)
        .exclude(subject_column="")
        .values_list("pk", "storage")
    ]
    affected = [s.dataset_version_id for s in snapshots] + [e.dataset_version_id for e in external]
    # Finished runs with per-row figures on a readable snapshot that holds the person: which of
    # their rows were sampled is known only by reading it, so the person's rows there are the bound.
    readable = {s.dataset_version_id: s for s in snapshots if s.key_state == rules.KeyState.LIVE}
    gate_runs = [
        rules.StoredGateRun(gate_run_id=run_id, dataset_version_id=dv_id, dataset_id=readable[dv_id].dataset_id,
                            subject_rows=readable[dv_id].subject_rows)
        for run_id, dv_id in GateRun.objects.unrestricted().filter(
            dataset_version_id__in=list(readable), result__isnull=False, result__has_key="explainability"
        ).values_list("pk", "dataset_version_id")
    ]
    return rules.Discovery(
        snapshots=tuple(snapshots),
        external=tuple(external),
        model_versions=tuple(downstream_model_versions(affected)),
        gate_runs=tuple(gate_runs),
    )


def downstream_model_versions(dataset_version_ids) -> list[rules.DownstreamModelVersion]:
    """Every model version whose training run read one of DATASET_VERSION_IDS, with its releases."""
    by_version: dict[int, dict] = {}
    for run_id, mv_id, dv_id in TrainingRunInput.objects.filter(
        dataset_version_id__in=list(dataset_version_ids), run__model_version__isnull=False
    ).values_list("run_id", "run__model_version_id", "dataset_version_id"):
        entry = by_version.setdefault(mv_id, {"runs": set(), "datasets": set()})
        entry["runs"].add(run_id)
        entry["datasets"].add(dv_id)
    releases: dict[int, list] = {}
    for release_id, mv_id, env in ReleaseRequest.objects.unrestricted().filter(
        model_version_id__in=list(by_version)
    ).values_list("pk", "model_version_id", "environment"):
        releases.setdefault(mv_id, []).append(rules.DownstreamRelease(release_id, env))
    return [
        rules.DownstreamModelVersion(
            model_version_id=mv_id, training_run_ids=tuple(v["runs"]), dataset_version_ids=tuple(v["datasets"]),
            releases=tuple(releases.get(mv_id, ())),
        )
        for mv_id, v in sorted(by_version.items())
    ]


def release_block_reason(model_version_id: int) -> str | None:
    """Why no release of MODEL_VERSION_ID may be approved because of erasure reviews, or None."""
    reviews = [r.as_rule() for r in ErasureReview.objects.unrestricted().select_related("request")
               .filter(model_version_id=model_version_id)]
    return rules.release_block_reason(model_version_id, reviews)


def release_status_fact(model_version_id: int, environment: str) -> dict:
    """The release-status API's ``erasure_review`` fact: whether erasure reviews block the version."""
    reason = release_block_reason(model_version_id)
    return {"blocked": reason is not None, "reason": reason}


def erasure_certificate_facts(*, user, pk) -> dict:
    """What an erasure certificate shows of request PK, for USER (the Data Protection Officer or an
    Auditor: ``view_erasurerequest``; anyone else finds no such request, 404).

    Ids, hashes, times and decisions of Custos objects only: never the request's keyed hash. The
    rows are read across units, as the officer acts across the institution.
    """
    if user is None or not user.has_perm("governance.view_erasurerequest"):
        raise Http404("No such erasure request.")
    request = ErasureRequest.objects.for_user(user).filter(pk=pk).first()
    if request is None:
        raise Http404("No such erasure request.")
    snapshots = list(ErasureSnapshot.objects.unrestricted().filter(request=request)
                     .select_related("predecessor__dataset", "successor").order_by("predecessor_id"))
    reviews = list(ErasureReview.objects.unrestricted().filter(request=request)
                   .select_related("model_version__model", "decided_by").order_by("model_version_id"))
    tasks = list(RecipientTask.objects.unrestricted().filter(request=request)
                 .select_related("dataset_version__dataset", "closed_by").order_by("dataset_version_id"))
    hold_ids = sorted({h for s in (request.plan or {}).get("snapshots", []) for h in s.get("hold_ids", [])})
    holds = list(LegalHold.objects.unrestricted().filter(pk__in=hold_ids)
                 .select_related("dataset", "dataset_version__dataset", "recorded_by", "confirmed_by").order_by("pk"))
    return {"request": request, "snapshots": snapshots, "reviews": reviews, "recipient_tasks": tasks,
            "legal_holds": holds}
