"""What every governance admin page that writes shares: its writes are the services' own.

Django's admin runs a change form's save inside one transaction of its own. The services are
durable transactions (each commits its change and its ledger entry, then runs what must follow
the commit, such as signing an attestation), so a service must not be nested in the admin's:
``ServiceWritesAdmin`` drops that outer transaction, and ``save_model`` calls a service.
"""

from django.contrib import admin


class ServiceWritesAdmin(admin.ModelAdmin):
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Each write below is a service's own durable transaction (see the module docstring).
        return self._changeform_view(request, object_id, form_url, extra_context)
