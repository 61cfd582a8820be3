"""Which ledger entries a user may read: those about records of the business units they may see.

The ledger (``audit``) knows nothing of units; it names its subjects by strings such as
``governance.modelversion:42``. This is the read scope it applies through the setting
``CUSTOS_LEDGER_READ_SCOPE`` to its API and its admin browser. It is derived from what every
governed model declares (``GovernedModel.unit_path``, ``institution_wide``), so an app that
adds governed models (monitoring, reports) is covered without a change here.
"""

from django.apps import apps
from django.db.models import CharField, Q, Value
from django.db.models.functions import Cast, Concat

from ..models import GateRun, ModelVersion, ReleaseRequest, TrainingRun
from ..models.access import sees_all_units
from ..models.base import GovernedModel

# Subjects every ledger reader may read besides the institution-wide records: the ledger's keys.
SHARED_PREFIXES = ("audit.key:",)


def governed_models() -> list[type[GovernedModel]]:
    """Every installed model that names itself in the ledger (every app's, not only governance's)."""
    return [m for m in apps.get_models() if issubclass(m, GovernedModel)]


def scope_entries(queryset, user):
    """Filter QUERYSET (ledger entries) to those USER may read.

    Superusers and global read roles (Auditor) read every entry. Others read the entries about
    records of their units, about institution-wide records (gate and approval policies, a risk
    tier's gate policy assignment) and the ledger's keys; entries about people (role and status
    changes), service tokens and the storage master key stay with the global readers.
    """
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    if user.is_superuser or sees_all_units(user):
        return queryset
    visible = Q()
    for prefix in SHARED_PREFIXES:
        visible |= Q(subject__startswith=prefix)
    for model in governed_models():
        if model.institution_wide:
            visible |= Q(subject__startswith=f"{model._meta.label_lower}:")
            continue
        if model.unit_path is None:
            continue  # no unit: global readers only
        records = model.objects.for_user(user)  # the same rule as every other read of these records
        visible |= Q(subject__in=records.annotate(subject=_subject(model)).values("subject"))
    return queryset.filter(visible)


def _subject(model):
    """The SQL expression of a record's ledger subject (``GovernedModel.ledger_subject``)."""
    return Concat(Value(f"{model._meta.label_lower}:"), Cast("pk", CharField()), output_field=CharField())


def related_subjects(subject: str) -> list[str]:
    """Every ledger subject about the same piece of work as SUBJECT: for a model version (or its
    release request, gate run or training run) the version, its model, its training run, the code
    and the dataset versions it used, its gate runs with their snapshots and policies, and its
    release requests with their approval policies. Any other subject is about itself only.

    The ledger's export (``ledger export --subject S --related``, the admin's "export evidence
    bundle") names this through ``CUSTOS_LEDGER_RELATED_SUBJECTS``. An operator's and an
    auditor's view: the caller decides who may ask (the admin asks the export permission)."""
    label, _, pk = subject.partition(":")
    if not pk.isdigit():
        return [subject]
    owners = {"governance.modelversion": ModelVersion.objects.unrestricted().filter(pk=pk),
              "governance.releaserequest": ModelVersion.objects.unrestricted().filter(release_requests__pk=pk),
              "governance.gaterun": ModelVersion.objects.unrestricted().filter(gate_runs__pk=pk),
              "governance.trainingrun": ModelVersion.objects.unrestricted().filter(training_run__pk=pk)}
    if label not in owners:
        return [subject]
    found = {subject}
    for mv in owners[label].select_related("model"):
        found |= {mv.ledger_subject, mv.model.ledger_subject}
        for run in TrainingRun.objects.unrestricted().filter(model_version=mv).prefetch_related(
                "inputs__dataset_version__dataset", "outputs__dataset_version__dataset"):
            found.add(run.ledger_subject)
            if run.code_version_id:
                found.add(run.code_version.ledger_subject)
            for link in [*run.inputs.all(), *run.outputs.all()]:
                found |= {link.dataset_version.ledger_subject, link.dataset_version.dataset.ledger_subject}
        for gate in GateRun.objects.unrestricted().filter(model_version=mv).select_related(
                "dataset_version__dataset", "policy"):
            found |= {gate.ledger_subject, gate.dataset_version.ledger_subject,
                      gate.dataset_version.dataset.ledger_subject, gate.policy.ledger_subject}
        for release in ReleaseRequest.objects.unrestricted().filter(model_version=mv).select_related("approval_policy"):
            found.add(release.ledger_subject)
            if release.approval_policy_id:
                found.add(release.approval_policy.ledger_subject)
    return sorted(found)
