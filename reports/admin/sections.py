"""Human sections of the technical documentation, written in the admin: each save records a new
version through the service (its digest ledgered); versions are never edited."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError

from config.errors import DomainError, refusal_text
from governance.admin.base import ServiceWritesAdmin
from governance.selectors.registry import models_for

from ..models import HumanSection
from ..selectors.reports import human_sections_for
from ..services.sections import human_section_record


class HumanSectionForm(forms.ModelForm):
    class Meta:
        model = HumanSection
        fields = ["model", "key", "text"]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.recorded = None
        if "model" in self.fields:
            self.fields["model"].queryset = models_for(actor)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.recorded = human_section_record(model=cleaned["model"], key=cleaned["key"], text=cleaned["text"],
                                                 actor=self.actor)
        except ValidationError as exc:
            self.add_error(None, exc)
        except (DomainError, PermissionDenied) as exc:
            self.add_error(None, refusal_text(exc))
        return cleaned

    def validate_unique(self):
        pass  # the service numbers the version


@admin.register(HumanSection)
class HumanSectionAdmin(ServiceWritesAdmin):
    form = HumanSectionForm
    list_display = ["model", "key", "version", "author", "created_at", "short_digest", "ledger_seq"]
    list_filter = ["key"]
    search_fields = ["model__name", "text"]

    def get_queryset(self, request):
        return human_sections_for(request.user)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["model", "key", "text"]
        return ["model", "key", "version", "text", "author", "created_at", "digest", "ledger_seq"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class RecordingForm(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, actor=request.user, **kw)

        return RecordingForm

    @admin.display(description="digest")
    def short_digest(self, obj):
        return obj.digest[:16]

    def save_model(self, request, obj, form, change):
        obj.pk = form.recorded.pk  # recorded through the service by the form's clean()

    def has_change_permission(self, request, obj=None):
        return False  # a change is a new version: "Add" another

    def has_delete_permission(self, request, obj=None):
        return False
