"""Reads of release requests, restricted to the business units the user may see."""

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.http import Http404
from django.utils.module_loading import import_string
from guardian.models import GroupObjectPermission, UserObjectPermission

from ..models import Approval, BusinessUnit, MLModel, ModelVersion, ReleaseRequest
from ..rules.releases import Decision, State
from ..rules.roles import GLOBAL_READ_ROLES
from .access import UNIT_ACCESS_PERM


def release_list(*, user, state=None, environment=None):
    qs = ReleaseRequest.objects.select_related(
        "model__business_unit", "model_version", "requester", "approval_policy"
    ).order_by("-created_at", "-pk")
    if state:
        qs = qs.filter(state=state)
    if environment:
        qs = qs.filter(environment=environment)
    return qs.for_user(user)


def release_get(*, user, pk) -> ReleaseRequest:
    """The release PK if USER may see it; Http404 otherwise (another unit's looks absent)."""
    release = release_list(user=user).prefetch_related("approvals__approver").filter(pk=pk).first()
    if release is None:
        raise Http404("No such release request.")
    return release


def model_version_get(*, user, pk) -> ModelVersion:
    """The model version PK if USER may see its unit; Http404 otherwise."""
    mv = ModelVersion.objects.select_related("model__business_unit").for_user(user).filter(pk=pk).first()
    if mv is None:
        raise Http404("No such model version.")
    return mv


def model_version_find(*, user, model: str, version: str, business_unit: str | None = None) -> ModelVersion:
    """The version VERSION of the model named MODEL in a unit USER may see; Http404 if none or ambiguous."""
    qs = ModelVersion.objects.select_related("model__business_unit").filter(model__name=model, version=version)
    qs = qs.for_user(user)
    if business_unit:
        qs = qs.filter(model__business_unit__slug=business_unit)
    found = list(qs[:2])
    if len(found) != 1:
        raise Http404(
            "No such model version." if not found else "Several units have this model; name the business_unit."
        )
    return found[0]


_STATUS_FACTS: dict[str, str] = {}


def register_status_fact(name: str, fact: str) -> None:
    """Add NAME to every release-status answer: the dotted path FACT names a function
    ``(model_version_id, environment) -> JSON value`` (an app above governance, such as
    monitoring, tells deploy jobs its view of the version this way)."""
    _STATUS_FACTS[name] = fact


def status_fact_names() -> list[str]:
    """The names of the registered release-status facts, in registration order."""
    return list(_STATUS_FACTS)


def release_status(*, user, model: str, version: str, environment: str, business_unit: str | None = None) -> dict:
    """Is VERSION of MODEL approved for ENVIRONMENT? The latest request decides.

    Returns the answer a deploy job reads: ``{approved, state, release_id, model, version,
    business_unit, artifact_sha256, attestation}`` (``state`` and ``release_id`` are None when
    nothing was requested; ``attestation`` is the DSSE envelope only while approved). Http404
    when USER may not read the model's unit, or the name is ambiguous (as ``model_version_find``).

    Deploy jobs poll this, so it is one SQL statement: the version, its unit, the caller's
    right to read that unit and the latest request, decided together on every call (nothing
    about the caller is cached: a revoked grant is refused on the very next request). The rule
    is ``GovernedQuerySet.for_user``' for reading — superusers and global read roles see every unit,
    others the units granted to them or to one of their groups (guardian's generic object
    permissions) — written out in SQL because composing it with the ORM and guardian cost
    ~2.4 ms of CPU per request against ~0.1 ms for the statement; a test holds the two equal.
    """
    if not user.is_authenticated or not user.is_active:
        raise Http404("No such model version.")
    t = {m.__name__: connection.ops.quote_name(m._meta.db_table) for m in
         (ModelVersion, MLModel, BusinessUnit, ReleaseRequest, UserObjectPermission, GroupObjectPermission, Group,
          Permission)}
    t["user_groups"] = connection.ops.quote_name(Group.user_set.through._meta.db_table)
    params = [environment, model, version]
    where = ""
    if business_unit:
        where += " AND bu.slug = %s"
        params.append(business_unit)
    if not user.is_superuser:
        codename = UNIT_ACCESS_PERM.split(".")[1]
        unit_type = ContentType.objects.get_for_model(BusinessUnit)  # cached per process, as guardian does
        roles = sorted(GLOBAL_READ_ROLES)
        where += f"""
          AND (EXISTS (SELECT 1 FROM {t["user_groups"]} ug JOIN {t["Group"]} g ON g.id = ug.group_id
                       WHERE ug.user_id = %s AND g.name IN ({", ".join(["%s"] * len(roles))}))
            OR EXISTS (SELECT 1 FROM {t["UserObjectPermission"]} uop JOIN {t["Permission"]} p ON p.id = uop.permission_id
                       WHERE uop.user_id = %s AND p.content_type_id = %s AND p.codename = %s
                         AND uop.object_pk = CAST(bu.id AS varchar(255)))
            OR EXISTS (SELECT 1 FROM {t["GroupObjectPermission"]} gop JOIN {t["Permission"]} p ON p.id = gop.permission_id
                       JOIN {t["user_groups"]} ug ON ug.group_id = gop.group_id
                       WHERE ug.user_id = %s AND p.content_type_id = %s AND p.codename = %s
                         AND gop.object_pk = CAST(bu.id AS varchar(255))))"""
        params += [user.pk, *roles, user.pk, unit_type.pk, codename, user.pk, unit_type.pk, codename]
    sql = f"""
        SELECT m.name, mv.version, bu.slug, mv.artifact_sha256, r.id, r.state, r.attestation, mv.id
        FROM {t["ModelVersion"]} mv
        JOIN {t["MLModel"]} m ON m.id = mv.model_id
        JOIN {t["BusinessUnit"]} bu ON bu.id = m.business_unit_id
        LEFT JOIN {t["ReleaseRequest"]} r ON r.id = (
            SELECT r2.id FROM {t["ReleaseRequest"]} r2 WHERE r2.model_version_id = mv.id AND r2.environment = %s
            ORDER BY r2.created_at DESC, r2.id DESC LIMIT 1)
        WHERE m.name = %s AND mv.version = %s{where}
        LIMIT 2"""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if len(rows) != 1:
        raise Http404("No such model version." if not rows else "Several units have this model; name the business_unit.")
    name, version, unit_slug, sha256, release_id, state, attestation, model_version_id = rows[0]
    approved = state == State.APPROVED
    if approved:
        attestation = ReleaseRequest._meta.get_field("attestation").from_db_value(attestation, None, connection)
    answer = {
        "approved": approved,
        "state": state,
        "release_id": release_id,
        "model": name,
        "version": version,
        "business_unit": unit_slug,
        "artifact_sha256": sha256,
        "attestation": attestation if approved else None,
    }
    for fact_name, fact in _STATUS_FACTS.items():
        answer[fact_name] = import_string(fact)(model_version_id, environment)
    return answer


def releases_needing_attention(*, user) -> dict:
    """What an officer or validator should look at: decisions awaiting them, inconclusive gates, revocations."""
    visible = release_list(user=user)
    awaiting = visible.filter(state=State.AWAITING_APPROVAL)
    decided = Approval.objects.filter(approver=user).exclude(decision=Decision.OVERRIDE).values("release")
    mine = awaiting.exclude(requester=user).exclude(pk__in=decided)
    if not user.has_perm("governance.decide_releaserequest"):
        mine = mine.none()  # nothing awaits the decision of someone who cannot decide
    return {
        "awaiting_decision": mine,
        "inconclusive": awaiting.filter(gate_verdict="inconclusive"),
        "gating": visible.filter(state__in=[State.SUBMITTED, State.GATING]),
        "revoked": visible.filter(state=State.REVOKED).order_by("-ended_at")[:20],
    }
