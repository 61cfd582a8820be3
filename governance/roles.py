"""Roles are Django groups: what a person may do. Business units say where (object permissions).

The groups are created by a data migration; their model permissions are (re)applied after
every migrate, so a permission added with a new model reaches its roles without a new data
migration.
"""

from django.contrib.auth.models import Group, Permission

DATA_SCIENTIST = "Data Scientist"
COMPLIANCE_OFFICER = "Compliance Officer"
MODEL_RISK_VALIDATOR = "Model Risk Validator"
AUDITOR = "Auditor"
PIPELINE = "Pipeline"

ROLES = [DATA_SCIENTIST, COMPLIANCE_OFFICER, MODEL_RISK_VALIDATOR, AUDITOR, PIPELINE]

# Roles that see every business unit (read-only): they audit the whole institution.
GLOBAL_READ_ROLES = {AUDITOR}

# "app_label.codename" of the model permissions each role holds. A permission says what a
# role may do; object permissions on a BusinessUnit say in which units.
ROLE_PERMISSIONS = {
    DATA_SCIENTIST: [
        "governance.view_releaserequest",
        "governance.add_releaserequest",
        "governance.view_approval",
        "governance.view_approvalpolicy",
        "governance.view_businessunit",
        "governance.view_dataset",
        "governance.view_datasetversion",
        "governance.view_codeversion",
        "governance.view_mlmodel",
        "governance.view_modelversion",
        "governance.view_trainingrun",
        "governance.view_openlineageevent",
        "governance.add_dataset",
        "governance.add_datasetversion",
        "governance.add_codeversion",
        "governance.add_mlmodel",
        "governance.add_modelversion",
        "governance.add_trainingrun",
        "governance.add_openlineageevent",
    ],
    COMPLIANCE_OFFICER: [
        "governance.view_releaserequest",
        "governance.view_approval",
        "governance.view_approvalpolicy",
        "governance.add_approvalpolicy",
        "governance.decide_releaserequest",
        "governance.revoke_releaserequest",
        "governance.view_businessunit",
        "governance.view_dataset",
        "governance.view_datasetversion",
        "governance.view_codeversion",
        "governance.view_mlmodel",
        "governance.view_modelversion",
        "governance.view_trainingrun",
        "governance.view_subjectindexentry",
        "governance.view_openlineageevent",
        "governance.destroy_snapshotkey",
        "audit.view_ledgerentry",
        "audit.view_checkpoint",
    ],
    MODEL_RISK_VALIDATOR: [
        "governance.view_releaserequest",
        "governance.view_approval",
        "governance.view_approvalpolicy",
        "governance.decide_releaserequest",
        "governance.view_businessunit",
        "governance.view_dataset",
        "governance.view_datasetversion",
        "governance.view_codeversion",
        "governance.view_mlmodel",
        "governance.view_modelversion",
        "governance.view_trainingrun",
        "governance.view_openlineageevent",
        "audit.view_ledgerentry",
        "audit.view_checkpoint",
    ],
    AUDITOR: [
        "governance.view_releaserequest",
        "governance.view_approval",
        "governance.view_approvalpolicy",
        "governance.view_businessunit",
        "governance.view_dataset",
        "governance.view_datasetversion",
        "governance.view_codeversion",
        "governance.view_mlmodel",
        "governance.view_modelversion",
        "governance.view_trainingrun",
        "governance.view_subjectindexentry",
        "governance.view_openlineageevent",
        "audit.view_ledgerentry",
        "audit.export_ledgerentry",
        "audit.view_checkpoint",
    ],
    PIPELINE: [
        "governance.view_releaserequest",
        "governance.add_releaserequest",
        "governance.view_businessunit",
        "governance.view_dataset",
        "governance.view_datasetversion",
        "governance.view_codeversion",
        "governance.view_mlmodel",
        "governance.view_modelversion",
        "governance.view_trainingrun",
        "governance.view_openlineageevent",
        "governance.add_dataset",
        "governance.add_datasetversion",
        "governance.add_codeversion",
        "governance.add_mlmodel",
        "governance.add_modelversion",
        "governance.add_trainingrun",
        "governance.add_openlineageevent",
    ],
}


# Release gates (issue 5): who may read runs and policies, submit runs, publish policies and
# re-verify runs. Added per role here so the registry's lists above stay as they were.
_GATE_PERMISSIONS = {
    DATA_SCIENTIST: ["view_gatepolicy", "view_gatepolicyassignment", "view_gaterun", "add_gaterun"],
    PIPELINE: ["view_gatepolicy", "view_gatepolicyassignment", "view_gaterun", "add_gaterun"],
    COMPLIANCE_OFFICER: ["view_gatepolicy", "add_gatepolicy", "view_gatepolicyassignment", "view_gaterun",
                         "reverify_gaterun"],
    MODEL_RISK_VALIDATOR: ["view_gatepolicy", "add_gatepolicy", "view_gatepolicyassignment", "view_gaterun",
                           "add_gaterun", "reverify_gaterun"],
    AUDITOR: ["view_gatepolicy", "view_gatepolicyassignment", "view_gaterun", "reverify_gaterun"],
}
for _role, _codenames in _GATE_PERMISSIONS.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] + [f"governance.{c}" for c in _codenames]

def _permissions(names):
    perms = []
    for name in names:
        app_label, codename = name.split(".")
        perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if perm is not None:  # absent only mid-migration, before its model exists
            perms.append(perm)
    return perms


def sync_role_permissions(sender=None, **kwargs):
    """Create the role groups if needed and give each exactly its listed model permissions."""
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(_permissions(ROLE_PERMISSIONS.get(role, [])))


def has_role(user, role) -> bool:
    return user.is_authenticated and user.groups.filter(name=role).exists()
