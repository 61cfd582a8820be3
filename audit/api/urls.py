"""Ledger API routes (included under /api/v1/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("ledger/entries", views.EntryListView.as_view(), name="ledger-entries"),
    path("ledger/entries/<int:seq>", views.EntryDetailView.as_view(), name="ledger-entry"),
    path("ledger/checkpoint", views.CheckpointView.as_view(), name="ledger-checkpoint"),
    path("ledger/checkpoint/note", views.CheckpointNoteView.as_view(), name="ledger-checkpoint-note"),
    path("ledger/proofs/inclusion", views.InclusionProofView.as_view(), name="ledger-inclusion-proof"),
    path("ledger/proofs/consistency", views.ConsistencyProofView.as_view(), name="ledger-consistency-proof"),
    path("ledger/keys", views.KeyListView.as_view(), name="ledger-keys"),
]
