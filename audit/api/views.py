"""Read-only ledger API for auditors and pipelines.

Who may read what: the entries themselves (kinds, subjects, actors, payloads) need the
``audit.view_ledgerentry`` permission (Compliance Officer, Model Risk Validator, Auditor). The
checkpoint, proofs and public keys reveal only hashes and public keys, and any authenticated
caller (pipelines included) may read them to verify an attestation or a bundle offline.
"""

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import tree
from ..chain import b64
from ..selectors import checkpoint_latest, entry_canonical, entry_list, key_list


class CanViewLedger(BasePermission):
    """The caller holds ``audit.view_ledgerentry``."""

    message = "Reading ledger entries needs the audit.view_ledgerentry permission."

    def has_permission(self, request, view):
        return bool(request.user and request.user.has_perm("audit.view_ledgerentry"))


class NoteRenderer(BaseRenderer):
    """``text/plain``: the signed note as is (errors still come out as JSON text)."""

    media_type = "text/plain"
    format = "note"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str):
            return data.encode()
        return json.dumps(data).encode()


class LedgerEntrySerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    kind = serializers.CharField()
    subject = serializers.CharField()
    actor = serializers.CharField()
    payload = serializers.JSONField()
    prev_hash = serializers.CharField(help_text="Hex SHA-256 of the previous entry.")
    entry_hash = serializers.CharField(help_text="Hex RFC 6962 leaf hash of the canonical bytes.")
    signature = serializers.CharField(help_text="Base64 Ed25519 signature of the canonical bytes.")
    key_id = serializers.CharField()
    canonical = serializers.CharField(help_text="Base64 RFC 8785 bytes that were hashed and signed.")


def entry_data(entry) -> dict:
    return {
        "seq": entry.seq,
        "created_at": entry.created_at,
        "kind": entry.kind,
        "subject": entry.subject,
        "actor": entry.actor,
        "payload": entry.payload,
        "prev_hash": bytes(entry.prev_hash).hex(),
        "entry_hash": bytes(entry.entry_hash).hex(),
        "signature": b64(entry.signature),
        "key_id": entry.key_id,
        "canonical": b64(entry_canonical(entry)),
    }


class EntryListView(GenericAPIView):
    """Ledger entries in sequence order, filtered by kind, subject and sequence range."""

    permission_classes = [IsAuthenticated, CanViewLedger]

    class FilterInput(serializers.Serializer):
        kind = serializers.CharField(required=False, max_length=100)
        subject = serializers.CharField(required=False, max_length=200)
        seq_from = serializers.IntegerField(required=False, min_value=0)
        seq_to = serializers.IntegerField(required=False, min_value=0)

    @extend_schema(parameters=[FilterInput], responses=LedgerEntrySerializer(many=True))
    def get(self, request):
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(entry_list(user=request.user, **filters.validated_data))
        return self.get_paginated_response(LedgerEntrySerializer([entry_data(e) for e in page], many=True).data)


class EntryDetailView(APIView):
    """One ledger entry with the bytes its hash and signature cover."""

    permission_classes = [IsAuthenticated, CanViewLedger]

    @extend_schema(responses=LedgerEntrySerializer)
    def get(self, request, seq: int):
        entry = entry_list(user=request.user, seq_from=seq, seq_to=seq).first()
        if entry is None:
            raise NotFound(f"No ledger entry {seq}.")
        return Response(LedgerEntrySerializer(entry_data(entry)).data)


class LedgerCheckpointSerializer(serializers.Serializer):
    origin = serializers.CharField()
    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField(help_text="Hex root hash.")
    key_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    note = serializers.CharField(help_text="The C2SP signed note, verifiable with the published verifier key.")


def _latest_checkpoint():
    checkpoint = checkpoint_latest()
    if checkpoint is None:
        raise NotFound("No checkpoint has been signed yet.")
    return checkpoint


class CheckpointView(APIView):
    """The latest signed checkpoint as JSON."""

    problem_codes = (404,)  # no checkpoint signed yet

    @extend_schema(responses=LedgerCheckpointSerializer)
    def get(self, request):
        c = _latest_checkpoint()
        data = {
            "origin": c.note.split("\n", 1)[0],
            "tree_size": c.tree_size,
            "root_hash": bytes(c.root_hash).hex(),
            "key_id": c.key_id,
            "created_at": c.created_at,
            "note": c.note,
        }
        return Response(LedgerCheckpointSerializer(data).data)


class CheckpointNoteView(APIView):
    """The latest signed checkpoint as the signed note text (C2SP tlog-checkpoint)."""

    problem_codes = (404,)  # no checkpoint signed yet

    renderer_classes = [NoteRenderer, JSONRenderer]

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request):
        return Response(_latest_checkpoint().note, content_type="text/plain; charset=utf-8")


class ProofSerializer(serializers.Serializer):
    proof = serializers.ListField(child=serializers.CharField(), help_text="Hex node hashes, in RFC 6962 order.")
    root_hash = serializers.CharField(help_text="Hex root of the tree the proof leads to.")


class InclusionProofView(APIView):
    """The RFC 6962 inclusion proof of entry ``seq`` in the tree of ``tree_size`` (default: latest checkpoint)."""

    problem_codes = (404,)  # no checkpoint signed yet

    class Input(serializers.Serializer):
        seq = serializers.IntegerField(min_value=0)
        tree_size = serializers.IntegerField(min_value=1, required=False)

    class InclusionProofSerializer(ProofSerializer):
        seq = serializers.IntegerField()
        tree_size = serializers.IntegerField()
        leaf_hash = serializers.CharField()

    @extend_schema(parameters=[Input], responses=InclusionProofSerializer)
    def get(self, request):
        params = self.Input(data=request.query_params)
        params.is_valid(raise_exception=True)
        seq = params.validated_data["seq"]
        size = params.validated_data.get("tree_size") or _latest_checkpoint().tree_size
        try:
            proof = tree.inclusion_proof(seq=seq, tree_size=size)
            root = tree.root_at(size)
            (leaf,) = tree.fetch_nodes([(0, seq)]).values()
        except tree.ProofError as exc:
            raise ValidationError({"tree_size": [str(exc)]}) from exc
        data = {"seq": seq, "tree_size": size, "leaf_hash": leaf.hex(), "proof": [p.hex() for p in proof], "root_hash": root.hex()}
        return Response(self.InclusionProofSerializer(data).data)


class ConsistencyProofView(APIView):
    """The RFC 6962 consistency proof between trees of ``old_size`` and ``new_size`` (default: latest checkpoint)."""

    problem_codes = (404,)  # no checkpoint signed yet

    class Input(serializers.Serializer):
        old_size = serializers.IntegerField(min_value=1)
        new_size = serializers.IntegerField(min_value=1, required=False)

    class ConsistencyProofSerializer(ProofSerializer):
        old_size = serializers.IntegerField()
        new_size = serializers.IntegerField()
        old_root_hash = serializers.CharField()

    @extend_schema(parameters=[Input], responses=ConsistencyProofSerializer)
    def get(self, request):
        params = self.Input(data=request.query_params)
        params.is_valid(raise_exception=True)
        old = params.validated_data["old_size"]
        new = params.validated_data.get("new_size") or _latest_checkpoint().tree_size
        try:
            proof = tree.consistency_proof(old_size=old, new_size=new)
            data = {
                "old_size": old,
                "new_size": new,
                "proof": [p.hex() for p in proof],
                "old_root_hash": tree.root_at(old).hex(),
                "root_hash": tree.root_at(new).hex(),
            }
        except tree.ProofError as exc:
            raise ValidationError({"old_size": [str(exc)]}) from exc
        return Response(self.ConsistencyProofSerializer(data).data)


class KeyListView(APIView):
    """The ledger's public keys as note verifier keys, with status (active, retired, revoked)."""

    @extend_schema(
        responses=inline_serializer(
            "LedgerKey",
            {
                "key_id": serializers.CharField(),
                "verifier_key": serializers.CharField(help_text="<name>+<key id>+<base64(0x01 || Ed25519 key)>"),
                "status": serializers.ChoiceField(["active", "retired", "revoked"]),
                "introduced_at": serializers.IntegerField(help_text="Sequence number of the entry that declared it."),
                "revoked_at": serializers.IntegerField(allow_null=True),
            },
            many=True,
        ),
    )
    def get(self, request):
        return Response(key_list())
