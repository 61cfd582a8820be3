"""User administration: role and status changes are ledgered through the access services."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from ..services.access import USER_STATUS_FLAGS, user_roles_set, user_status_set

User = get_user_model()


class CustosUserAdmin(UserAdmin):
    # Roles (groups) say what a person may do; direct per-user permissions would bypass them.
    fieldsets = [
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Roles and status", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    ]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]

    def save_model(self, request, obj, form, change):
        # The form's flags are applied by the service, which ledgers them; the save keeps the
        # stored ones (a new user starts active, without staff or superuser status).
        flags = {flag: getattr(obj, flag) for flag in USER_STATUS_FLAGS}
        stored = type(obj).objects.filter(pk=obj.pk).values(*USER_STATUS_FLAGS).first() if change else None
        for flag, value in (stored or {"is_active": True, "is_staff": False, "is_superuser": False}).items():
            setattr(obj, flag, value)
        super().save_model(request, obj, form, change)
        user_status_set(user=obj, **flags, actor=request.user)

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
