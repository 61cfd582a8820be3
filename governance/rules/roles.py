"""Roles: what a person may do. Business units say where (object permissions).

Roles are Django groups named here; ``services.access.role_permissions_sync`` gives each group
exactly the model permissions listed here after every migrate, so a permission added with a new
model reaches its roles without a new data migration.
"""

DATA_SCIENTIST = "Data Scientist"
COMPLIANCE_OFFICER = "Compliance Officer"
MODEL_RISK_VALIDATOR = "Model Risk Validator"
AUDITOR = "Auditor"
PIPELINE = "Pipeline"
# Organisation-wide authority over the policies every unit's releases follow (SR 11-7's model
# risk management function): publishing gate and approval policy versions, choosing a risk
# tier's gate policy. A unit's officers and validators choose only their own models' policies.
HEAD_OF_MODEL_RISK = "Head of Model Risk"
# GDPR Art. 37-39: handles erasure requests across every business unit. The role acts on erasure
# requests and what they need (the subject index, snapshot keys), not on the units' other records:
# it holds no unit grants and reads the snapshots it erases through the erasure plan only.
DATA_PROTECTION_OFFICER = "Data Protection Officer"

ROLES = [
    DATA_SCIENTIST, COMPLIANCE_OFFICER, MODEL_RISK_VALIDATOR, AUDITOR, PIPELINE, HEAD_OF_MODEL_RISK,
    DATA_PROTECTION_OFFICER,
]

# Roles that see every business unit (read-only): they audit, or set policy for, the whole institution.
GLOBAL_READ_ROLES = {AUDITOR, HEAD_OF_MODEL_RISK}


def _perms(app_label, *codenames):
    return [f"{app_label}.{codename}" for codename in codenames]


# Every role reads the governed records of the units it may see (the units themselves are
# restricted by object permissions, not here).
READ_GOVERNANCE = _perms(
    "governance",
    "view_businessunit", "view_dataset", "view_datasetversion", "view_codeversion", "view_mlmodel",
    "view_modelversion", "view_trainingrun", "view_openlineageevent",
    "view_gatepolicy", "view_gatepolicyassignment", "view_gaterun",
    "view_releaserequest", "view_approval", "view_approvalpolicy",
)
# Registering data, code, models and runs, submitting gate runs and asking for releases: the
# work of data scientists and their pipelines.
REGISTER = _perms(
    "governance",
    "add_dataset", "add_datasetversion", "add_codeversion", "add_mlmodel", "add_modelversion",
    "add_trainingrun", "add_openlineageevent", "add_gaterun", "add_releaserequest",
)
READ_LEDGER = _perms("audit", "view_ledgerentry", "view_checkpoint")
# Reports (the reports app's models, named here by string: roles are declared once). Everyone but
# a pipeline reads the reports of their units; officers, validators and auditors issue them; a
# model's data scientists and officers write the human sections of its technical documentation.
READ_REPORTS = _perms("reports", "view_report", "view_humansection")
ISSUE_REPORTS = _perms("reports", "add_report")
WRITE_SECTIONS = _perms("reports", "add_humansection")
# Reading the erasure work that touches a unit's models: its reviews (validators decide them).
READ_ERASURE_REVIEWS = _perms("governance", "view_erasurereview")
# The Data Protection Officer's erasure work, institution-wide (no unit grant needed).
ERASURE = _perms(
    "governance",
    "view_erasurerequest", "add_erasurerequest", "verify_erasurerequest", "plan_erasurerequest",
    "approve_erasurerequest", "execute_erasurerequest", "extend_erasurerequest", "refuse_erasurerequest",
    "view_erasuresnapshot", "view_erasurereview", "view_recipienttask", "close_recipienttask",
    "view_legalhold", "add_legalhold", "confirm_legalhold", "release_legalhold",
)

# "app_label.codename" of the model permissions each role holds. A permission says what a
# role may do; object permissions on a BusinessUnit say in which units.
ROLE_PERMISSIONS = {
    DATA_SCIENTIST: READ_GOVERNANCE + REGISTER + READ_REPORTS + WRITE_SECTIONS,
    # A pipeline reads releases and their attestations, not the approval records behind them.
    PIPELINE: [p for p in READ_GOVERNANCE if p not in _perms("governance", "view_approval", "view_approvalpolicy")]
    + REGISTER,
    COMPLIANCE_OFFICER: READ_GOVERNANCE + READ_LEDGER + READ_REPORTS + ISSUE_REPORTS + WRITE_SECTIONS + _perms(
        "governance",
        "view_subjectindexentry", "destroy_snapshotkey",
        "add_gatepolicyassignment", "reverify_gaterun",
        "decide_releaserequest", "revoke_releaserequest",
    ),
    MODEL_RISK_VALIDATOR: READ_GOVERNANCE + READ_LEDGER + READ_REPORTS + ISSUE_REPORTS + _perms(
        "governance", "add_gatepolicyassignment", "add_gaterun", "reverify_gaterun", "decide_releaserequest"
    ),
    HEAD_OF_MODEL_RISK: READ_GOVERNANCE + READ_LEDGER + READ_REPORTS + ISSUE_REPORTS + _perms(
        "governance", "add_gatepolicy", "add_gatepolicyassignment", "add_approvalpolicy", "reverify_gaterun"
    ),
    AUDITOR: READ_GOVERNANCE + READ_LEDGER + READ_REPORTS + ISSUE_REPORTS + _perms("audit", "export_ledgerentry") + _perms(
        "governance", "view_subjectindexentry", "reverify_gaterun", "view_erasurerequest", "view_erasuresnapshot",
        "view_recipienttask", "view_legalhold",
    ) + READ_ERASURE_REVIEWS,
    # The officer issues and reads erasure certificates (reports.selectors shows them no other report).
    DATA_PROTECTION_OFFICER: READ_LEDGER + ERASURE + _perms("governance", "view_subjectindexentry")
    + _perms("reports", "view_report") + ISSUE_REPORTS,
}
# Model risk validators decide the erasure reviews of their units' model versions.
ROLE_PERMISSIONS[MODEL_RISK_VALIDATOR] += READ_ERASURE_REVIEWS + _perms("governance", "decide_erasurereview")
ROLE_PERMISSIONS[COMPLIANCE_OFFICER] += READ_ERASURE_REVIEWS
