"""User administration: creating people and changing their profile, roles and status are
ledgered through the access services; nothing here writes a user row itself."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin, csrf_protect_m, sensitive_post_parameters_m
from django.contrib.auth.models import Group

from ..services.access import (
    PROFILE_FIELDS,
    USER_STATUS_FLAGS,
    user_create,
    user_profile_set,
    user_roles_set,
    user_status_set,
)
from .base import LedgerHistory, ServiceWritesAdmin

User = get_user_model()


class CustosUserAdmin(LedgerHistory, ServiceWritesAdmin, UserAdmin):
    @staticmethod
    def ledger_subject_of(obj) -> str:
        return f"auth.user:{obj.pk}"  # as services.access ledgers a person

    # Roles (groups) say what a person may do; direct per-user permissions would bypass them.
    fieldsets = [
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Roles and status", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    ]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]

    @sensitive_post_parameters_m
    @csrf_protect_m
    def add_view(self, request, form_url="", extra_context=None):
        # UserAdmin wraps adding in a transaction of its own; user_create is its own (durable) one.
        return self._add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if not change:
            # A new person starts active, without staff or superuser status: the change page,
            # next, grants those and the roles (each ledgered).
            created = user_create(username=obj.username, password=form.cleaned_data.get("password1"),
                                  is_staff=False, actor=request.user)
            obj.pk, obj._state.adding, obj._state.db = created.pk, False, created._state.db
            return
        user_profile_set(user=obj, actor=request.user, **{name: getattr(obj, name) for name in PROFILE_FIELDS})
        user_status_set(user=obj, actor=request.user, **{flag: getattr(obj, flag) for flag in USER_STATUS_FLAGS})

    def save_related(self, request, form, formsets, change):
        roles = form.cleaned_data.pop("groups", None)
        super().save_related(request, form, formsets, change)
        if roles is not None:
            user_roles_set(user=form.instance, roles=[g.name for g in roles], actor=request.user)


class RoleAdmin(GroupAdmin):
    """Roles are defined in code (governance.rules.roles) and re-applied after every migrate: show
    them, but an edit here would be unledgered and silently undone by the next migrate."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(User)
admin.site.register(User, CustosUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, RoleAdmin)
