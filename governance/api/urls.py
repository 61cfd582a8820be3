"""Governance API routes; each area keeps its views in its own module (access, registry, …)."""

from django.urls import path

from . import access, erasure, gates, openlineage, registry, releases

urlpatterns = [
    path("me", access.MeView.as_view(), name="me"),
    # registry
    path("datasets", registry.DatasetListCreateView.as_view(), name="datasets"),
    path("datasets/<int:pk>/versions", registry.DatasetVersionUploadView.as_view(), name="dataset-version-upload"),
    path(
        "datasets/<int:pk>/references", registry.DatasetVersionReferenceView.as_view(), name="dataset-version-reference"
    ),
    path("dataset-versions", registry.DatasetVersionListView.as_view(), name="dataset-versions"),
    path("dataset-versions/<int:pk>", registry.DatasetVersionDetailView.as_view(), name="dataset-version"),
    path(
        "dataset-versions/<int:pk>/lineage", registry.DatasetVersionLineageView.as_view(), name="dataset-version-lineage"
    ),
    path("code-versions", registry.CodeVersionListCreateView.as_view(), name="code-versions"),
    path("models", registry.ModelListCreateView.as_view(), name="models"),
    path("models/<int:pk>", registry.ModelDetailView.as_view(), name="model"),
    path("models/<int:pk>/versions", registry.ModelVersionUploadView.as_view(), name="model-version-upload"),
    path("model-versions", registry.ModelVersionListView.as_view(), name="model-versions"),
    path("model-versions/<int:pk>", registry.ModelVersionDetailView.as_view(), name="model-version"),
    path("model-versions/<int:pk>/lineage", registry.ModelVersionLineageView.as_view(), name="model-version-lineage"),
    path("training-runs", registry.TrainingRunListCreateView.as_view(), name="training-runs"),
    path("training-runs/<int:pk>", registry.TrainingRunDetailView.as_view(), name="training-run"),
    path("subjects/lookup", registry.SubjectLookupView.as_view(), name="subject-lookup"),
    # OpenLineage ingestion (the path Marquez serves)
    path("lineage", openlineage.OpenLineageView.as_view(), name="openlineage"),
    # release gates
    path("gates/runs", gates.GateRunListCreateView.as_view(), name="gate-runs"),
    path("gates/runs/<int:pk>", gates.GateRunDetailView.as_view(), name="gate-run"),
    path("gates/policies", gates.GatePolicyListCreateView.as_view(), name="gate-policies"),
    path("gates/policies/<int:pk>", gates.GatePolicyDetailView.as_view(), name="gate-policy"),
    # releases
    path("releases", releases.ReleaseListView.as_view(), name="releases"),
    path("releases/status", releases.ReleaseStatusView.as_view(), name="release-status"),
    path("releases/<int:pk>", releases.ReleaseDetailView.as_view(), name="release"),
    path("releases/<int:pk>/decisions", releases.ReleaseDecisionView.as_view(), name="release-decisions"),
    path("releases/<int:pk>/revoke", releases.ReleaseRevokeView.as_view(), name="release-revoke"),
    path("releases/<int:pk>/attestation", releases.ReleaseAttestationView.as_view(), name="release-attestation"),
    # erasure (GDPR Art. 17)
    path("erasure-requests", erasure.ErasureRequestListView.as_view(), name="erasure-requests"),
    path("erasure-requests/<str:reference>", erasure.ErasureRequestDetailView.as_view(), name="erasure-request"),
    path("erasure-requests/<str:reference>/verify", erasure.ErasureVerifyView.as_view(), name="erasure-verify"),
    path("erasure-requests/<str:reference>/plan", erasure.ErasurePlanView.as_view(), name="erasure-plan"),
    path("erasure-requests/<str:reference>/approve", erasure.ErasureApproveView.as_view(), name="erasure-approve"),
    path("erasure-requests/<str:reference>/execute", erasure.ErasureExecuteView.as_view(), name="erasure-execute"),
    path("erasure-requests/<str:reference>/extend", erasure.ErasureExtendView.as_view(), name="erasure-extend"),
    path("erasure-requests/<str:reference>/refuse", erasure.ErasureRefuseView.as_view(), name="erasure-refuse"),
    path("erasure-reviews/<int:pk>/decision", erasure.ErasureReviewDecisionView.as_view(), name="erasure-review-decision"),
    path("erasure-recipient-tasks/<int:pk>/close", erasure.RecipientTaskCloseView.as_view(),
         name="erasure-recipient-task-close"),
    path("legal-holds", erasure.LegalHoldListView.as_view(), name="legal-holds"),
    path("legal-holds/<int:pk>/confirm", erasure.LegalHoldConfirmView.as_view(), name="legal-hold-confirm"),
    path("legal-holds/<int:pk>/release", erasure.LegalHoldReleaseView.as_view(), name="legal-hold-release"),
]
