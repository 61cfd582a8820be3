"""A read-only ledger browser: nobody, superusers included, may add, change or delete here."""

from django.contrib import admin
from django.utils.html import format_html

from .models import Checkpoint, LedgerEntry
from .selectors import entries_visible_to, entry_canonical, entry_inclusion


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
    list_display = ["seq", "created_at", "kind", "subject", "actor", "key_id"]
    list_filter = ["kind"]
    search_fields = ["=subject", "kind", "actor"]
    ordering = ["-seq"]
    show_full_result_count = False  # no COUNT(*) over a large ledger on each page
    fields = [
        "seq",
        "created_at",
        "kind",
        "subject",
        "actor",
        "payload",
        "inclusion",
        "hashes",
        "key_id",
        "signed_bytes",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return entries_visible_to(request.user, super().get_queryset(request))

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
        return format_html("<code>{}</code>", entry_canonical(obj).decode())


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["tree_size", "created_at", "key_id"]
    ordering = ["-tree_size"]
    fields = ["tree_size", "created_at", "key_id", "root", "signed_note"]
    readonly_fields = fields

    @admin.display(description="Root hash")
    def root(self, obj):
        return bytes(obj.root_hash).hex()

    @admin.display(description="Signed note")
    def signed_note(self, obj):
        return format_html("<pre>{}</pre>", obj.note)
