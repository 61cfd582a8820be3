"""A read-only ledger browser: nobody, superusers included, may add, change or delete here.

An auditor filters by kind, time and actor, searches by any part of a subject
(``releaserequest:3``), and on an entry's page finds its audit path to the latest checkpoint,
a download of that proof and a link to the checkpoint, whose signed note downloads too."""

import json

from django.contrib import admin
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join

from . import tree
from .models import Checkpoint, LedgerEntry
from .selectors import (
    checkpoint_latest,
    entries_visible_to,
    entry_canonical,
    entry_evidence,
    entry_inclusion,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    actions = None

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    # The signing key is on each entry's page: in the list it pushed the actor off a 1,400 px screen.
    list_display = ["seq", "created_at", "kind", "subject", "actor"]
    list_filter = ["kind", ("created_at", admin.DateFieldListFilter), "actor"]
    date_hierarchy = "created_at"
    search_fields = ["subject", "kind", "actor"]
    ordering = ["-seq"]
    show_full_result_count = False  # no COUNT(*) over a large ledger on each page
    fields = [
        "seq",
        "created_at",
        "kind",
        "subject_link",
        "actor",
        "payload",
        "inclusion",
        "audit_path",
        "hashes",
        "key_id",
        "signed_bytes",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return entries_visible_to(request.user, super().get_queryset(request))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [path("<int:pk>/proof.json", wrap(self.proof_view), name="audit_ledgerentry_proof"),
                *super().get_urls()]

    def proof_view(self, request, pk):
        """The entry with its inclusion proof at the latest checkpoint, and that signed checkpoint:
        what an auditor checks offline (RFC 9162 inclusion proof, C2SP signed note)."""
        entry = get_object_or_404(self.get_queryset(request), pk=pk)
        checkpoint = checkpoint_latest()
        if checkpoint is None or entry.seq >= checkpoint.tree_size:
            raise Http404("No checkpoint covers this entry yet (`manage.py ledger checkpoint` signs one).")
        body = {"entry": entry_evidence(entry, tree_size=checkpoint.tree_size), "tree_size": checkpoint.tree_size,
                "root_hash": bytes(checkpoint.root_hash).hex(), "checkpoint": checkpoint.note}
        response = HttpResponse(json.dumps(body, indent=2), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="ledger-entry-{entry.seq}-proof.json"'
        return response

    @admin.display(description="Subject")
    def subject_link(self, obj):
        """The subject, as a link to its record's admin page where the admin has one (the ledger
        names subjects "app.model:pk" and knows nothing of the apps; the admin's URL names do)."""
        label, _, pk = obj.subject.partition(":")
        app_label, _, model = label.partition(".")
        try:
            url = reverse(f"admin:{app_label}_{model}_change", args=[pk])
        except NoReverseMatch:
            return obj.subject
        return format_html('<a href="{}" id="subject-link">{}</a>', url, obj.subject)

    @admin.display(description="Audit path to the latest checkpoint")
    def audit_path(self, obj):
        checkpoint = checkpoint_latest()
        if checkpoint is None or obj.seq >= checkpoint.tree_size:
            return "— (not yet covered by a checkpoint)"
        proof = tree.inclusion_proof(seq=obj.seq, tree_size=checkpoint.tree_size)
        hashes = format_html_join("", "<li><code>{}</code></li>", ((h.hex(),) for h in proof))
        return format_html(
            '{} hash(es) from this leaf to the root of <a href="{}">checkpoint {}</a>:<ol>{}</ol>'
            '<a class="button" href="{}" id="proof-download">Download the proof with the checkpoint (JSON)</a>',
            len(proof), reverse("admin:audit_checkpoint_change", args=[checkpoint.pk]), checkpoint.tree_size,
            hashes, reverse("admin:audit_ledgerentry_proof", args=[obj.seq]),
        )

    @admin.display(description="Inclusion in the latest checkpoint")
    def inclusion(self, obj):
        ok, text = entry_inclusion(obj)
        mark = {True: "\u2714", False: "\u2718", None: "\u2026"}[ok]
        colour = {True: "green", False: "red", None: "grey"}[ok]
        return format_html('<strong style="color:{}">{} {}</strong>', colour, mark, text)

    @admin.display(description="Previous / entry hash")
    def hashes(self, obj):
        return format_html("{}<br>{}", bytes(obj.prev_hash).hex(), bytes(obj.entry_hash).hex())

    @admin.display(description="Signed bytes (RFC 8785)")
    def signed_bytes(self, obj):
        return format_html("<pre style='white-space:pre-wrap;word-break:break-all;max-width:100%'>{}</pre>",
                           entry_canonical(obj).decode())


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["tree_size", "created_at", "key_id"]
    ordering = ["-tree_size"]
    fields = ["tree_size", "created_at", "key_id", "root", "signed_note", "download"]
    readonly_fields = fields

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [path("<int:pk>/checkpoint.txt", wrap(self.note_view), name="audit_checkpoint_note"),
                *super().get_urls()]

    def note_view(self, request, pk):
        """The signed note as a file, to keep outside Custos (``ledger verify --checkpoint FILE``)."""
        checkpoint = get_object_or_404(self.get_queryset(request), pk=pk)
        response = HttpResponse(checkpoint.note, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="checkpoint-{checkpoint.tree_size}.txt"'
        return response

    @admin.display(description="Download")
    def download(self, obj):
        return format_html('<a class="button" href="{}" id="checkpoint-download">Download the signed note</a>',
                           reverse("admin:audit_checkpoint_note", args=[obj.pk]))

    @admin.display(description="Root hash")
    def root(self, obj):
        return bytes(obj.root_hash).hex()

    @admin.display(description="Signed note")
    def signed_note(self, obj):
        return format_html("<pre>{}</pre>", obj.note)
