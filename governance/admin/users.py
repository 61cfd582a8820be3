"""User administration: role changes are ledgered through the access service."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from ..services.access import user_roles_set

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

    def save_related(self, request, form, formsets, change):
        roles = form.cleaned_data.pop("groups", None)
        super().save_related(request, form, formsets, change)
        if roles is not None:
            user_roles_set(user=form.instance, roles=[g.name for g in roles], actor=request.user)


admin.site.unregister(User)
admin.site.register(User, CustosUserAdmin)
