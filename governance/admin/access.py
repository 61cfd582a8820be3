from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from config.errors import DomainError, refusal_text

from ..models import BusinessUnit, ServiceToken
from ..selectors.access import business_units_for, users_with_unit_access
from .base import LedgerHistory, ServiceWritesAdmin
from ..services.access import business_unit_create, business_unit_grant, business_unit_revoke, token_revoke


class GrantForm(forms.Form):
    user = forms.ModelChoiceField(queryset=get_user_model().objects.none(), help_text="Person or service account.")

    def __init__(self, *args, unit, **kwargs):
        super().__init__(*args, **kwargs)
        granted = users_with_unit_access(unit).values_list("pk", flat=True)
        self.fields["user"].queryset = (
            get_user_model().objects.filter(is_active=True).exclude(pk__in=granted).order_by("username")
        )


@admin.register(BusinessUnit)
class BusinessUnitAdmin(LedgerHistory, ServiceWritesAdmin):
    list_display = ["name", "slug", "people_with_access", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return business_units_for(request.user)

    def get_readonly_fields(self, request, obj=None):
        return ["name", "slug", "description", "created_at", "access"] if obj else ["created_at"]

    def get_prepopulated_fields(self, request, obj=None):
        # A unit's page shows its slug read-only: prepopulating a read-only field is a KeyError (500).
        return {} if obj else self.prepopulated_fields

    @admin.display(description="People with access")
    def people_with_access(self, obj):
        return users_with_unit_access(obj).count()

    @admin.display(description="Access")
    def access(self, obj):
        names = ", ".join(u.get_username() for u in users_with_unit_access(obj).order_by("username")) or "nobody"
        url = reverse("admin:governance_businessunit_access", args=[obj.pk])
        return format_html('{} — <a href="{}">manage access</a>', names, url)

    def save_model(self, request, obj, form, change):
        if not change:
            created = business_unit_create(
                name=obj.name, slug=obj.slug, description=obj.description, actor=request.user
            )
            obj.pk = created.pk

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/access/", wrap(self.access_view), name="governance_businessunit_access"),
            path("<int:pk>/access/<int:user_pk>/revoke/", wrap(self.access_revoke_view),
                 name="governance_businessunit_access_revoke"),
            *super().get_urls(),
        ]

    def access_revoke_view(self, request, pk, user_pk):
        """GET: whose access ends and what follows; POST: revoke it (ledgered)."""
        unit = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, unit):
            raise PermissionDenied
        user = get_object_or_404(users_with_unit_access(unit), pk=user_pk)
        back = reverse("admin:governance_businessunit_access", args=[unit.pk])
        if request.method == "POST":
            try:
                business_unit_revoke(unit=unit, user=user, actor=request.user)
            except (DomainError, ValidationError, PermissionDenied) as exc:
                messages.error(request, refusal_text(exc))
            else:
                messages.success(request, f"{user} no longer has access to {unit}.")
            return redirect(back)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": unit,
            "title": f"Remove {user.get_username()}'s access to {unit}?",
            "person": user,
            "back": back,
        }
        return TemplateResponse(request, "admin/governance/businessunit/access_revoke.html", context)

    def access_view(self, request, pk):
        """Who may work in a unit; grants and revocations go through the ledgered services."""
        unit = get_object_or_404(self.get_queryset(request), pk=pk)
        may_change = self.has_change_permission(request, unit)
        form = GrantForm(unit=unit)
        if request.method == "POST":
            if not may_change:
                raise PermissionDenied
            form = GrantForm(request.POST, unit=unit)
            if form.is_valid():
                business_unit_grant(unit=unit, user=form.cleaned_data["user"], actor=request.user)
                messages.success(request, f"{form.cleaned_data['user']} now has access to {unit}.")
                return redirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": unit,
            "title": f"Access to {unit}",
            "users": users_with_unit_access(unit).prefetch_related("groups").order_by("username"),
            "form": form,
            "may_change": may_change,
        }
        return TemplateResponse(request, "admin/governance/businessunit/access.html", context)


@admin.register(ServiceToken)
class ServiceTokenAdmin(LedgerHistory, admin.ModelAdmin):
    list_display = ["prefix", "user", "name", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "user__username", "name"]
    readonly_fields = [f.name for f in ServiceToken._meta.fields if f.name != "digest"]
    exclude = ["digest"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # tokens are shown once, so they are issued by `manage.py tokens create`

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected tokens", permissions=["view"])
    def revoke(self, request, queryset):
        if not request.user.is_superuser:
            self.message_user(request, "Only administrators may revoke tokens.", level=messages.ERROR)
            return
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(token=token, actor=request.user)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s).")
