"""What every governance admin page that writes shares: its writes are the services' own.

Django's admin runs a change form's save inside one transaction of its own. The services are
durable transactions (each commits its change and its ledger entry, then runs what must follow
the commit, such as signing an attestation), so a service must not be nested in the admin's:
``ServiceWritesAdmin`` drops that outer transaction, and ``save_model`` calls a service.
"""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from audit.models import LedgerEntry
from audit.selectors import entries_visible_to, entry_inclusion


class ServiceWritesAdmin(admin.ModelAdmin):
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Each write below is a service's own durable transaction (see the module docstring).
        return self._changeform_view(request, object_id, form_url, extra_context)


# The admin page of each kind of node a lineage graph draws ("modelversion:5" → its change page).
LINEAGE_PAGES = {
    "datasetversion": "admin:governance_datasetversion_change",
    "codeversion": "admin:governance_codeversion_change",
    "trainingrun": "admin:governance_trainingrun_change",
    "modelversion": "admin:governance_modelversion_change",
}


def lineage_href(node_id: str):
    """The address of a lineage node's page, or None for a node with none (an external dataset)."""
    kind, _, pk = node_id.partition(":")
    name = LINEAGE_PAGES.get(kind)
    return reverse(name, args=[pk]) if name and pk.isdigit() else None


def ledger_link(seq):
    """A ledger sequence number as a link to its entry's page."""
    if seq is None:
        return "—"
    return format_html('<a href="{}">#{}</a>', reverse("admin:audit_ledgerentry_change", args=[seq]), seq)


class LedgerHistory:
    """A governed record's History is the ledger entries about it (nobody edits records here, so
    Django's change log is empty): each with its inclusion in the latest signed checkpoint."""

    @staticmethod
    def ledger_subject_of(obj) -> str:
        return obj.ledger_subject

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.model._meta.verbose_name} {object_id}.")
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        subject = self.ledger_subject_of(obj)
        entries = entries_visible_to(request.user, LedgerEntry.objects.filter(subject=subject)).order_by("seq")
        rows = [(e, *entry_inclusion(e)) for e in entries[:200]]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": obj,
            "title": f"Ledger entries about {obj}",
            "subject": subject,
            "rows": rows,
            "all_url": reverse("admin:audit_ledgerentry_changelist") + "?" + urlencode({"subject": subject}),
        }
        return TemplateResponse(request, "admin/governance/ledger_history.html", context)
