"""What governance writes to the ledger: one closed vocabulary, registered in ``GovernanceConfig.ready()``.

Services name a kind by its member (``GovernanceKind.RUN_FINISHED``), never by a string, so a
kind is spelled once and a reader can find every place that writes it.
"""

from enum import StrEnum


class GovernanceKind(StrEnum):
    # access: business units, people, service accounts and their tokens
    UNIT_CREATED = "access.unit_created"
    UNIT_GRANTED = "access.unit_granted"
    UNIT_REVOKED = "access.unit_revoked"
    USER_CREATED = "access.user_created"
    USER_PROFILE_CHANGED = "access.user_profile_changed"
    ROLES_CHANGED = "access.roles_changed"
    USER_STATUS_CHANGED = "access.user_status_changed"
    SERVICE_ACCOUNT_CREATED = "access.service_account_created"
    TOKEN_CREATED = "access.token_created"
    TOKEN_REVOKED = "access.token_revoked"
    # registry: data, code, models, runs, lineage, the snapshot store
    DATASET_CREATED = "registry.dataset_created"
    DATASET_VERSION_STORED = "registry.dataset_version_stored"
    DATASET_VERSION_REFERENCED = "registry.dataset_version_referenced"
    DATASET_VERSION_REPORTED = "registry.dataset_version_reported"
    SNAPSHOT_KEY_DESTROYED = "registry.snapshot_key_destroyed"
    MASTER_KEY_ROTATED = "registry.master_key_rotated"
    STORAGE_SWEPT = "registry.storage_swept"
    CODE_VERSION_REGISTERED = "registry.code_version_registered"
    MODEL_CREATED = "registry.model_created"
    MODEL_VERSION_REGISTERED = "registry.model_version_registered"
    TRAINING_RUN_REGISTERED = "registry.training_run_registered"
    OPENLINEAGE_EVENT_RECEIVED = "registry.openlineage_event_received"
    # release gates
    POLICY_PUBLISHED = "gates.policy_published"
    POLICY_ASSIGNED = "gates.policy_assigned"
    RUN_SUBMITTED = "gates.run_submitted"
    RUN_STARTED = "gates.run_started"
    RUN_FINISHED = "gates.run_finished"
    RUN_REVERIFY_REQUESTED = "gates.run_reverify_requested"
    RUN_REVERIFIED = "gates.run_reverified"
    # releases
    APPROVAL_POLICY_PUBLISHED = "release.approval_policy_published"
    RELEASE_REQUESTED = "release.requested"
    GATING_STARTED = "release.gating_started"
    GATES_RECORDED = "release.gates_recorded"
    APPROVAL_GIVEN = "release.approval_given"
    REJECTION_GIVEN = "release.rejection_given"
    GATE_OVERRIDDEN = "release.gate_overridden"
    APPROVED = "release.approved"
    REJECTED = "release.rejected"
    SUPERSEDED = "release.superseded"
    REVOKED = "release.revoked"
    ATTESTATION_ISSUED = "release.attestation_issued"
