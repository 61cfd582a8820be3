from django.contrib import admin

from ..models import BusinessUnit, ServiceToken
from ..selectors.access import business_units_for
from ..services.access import business_unit_create, token_revoke


@admin.register(BusinessUnit)
class BusinessUnitAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return business_units_for(request.user)

    def get_readonly_fields(self, request, obj=None):
        return ["name", "slug", "description", "created_at"] if obj else ["created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            created = business_unit_create(
                name=obj.name, slug=obj.slug, description=obj.description, actor=request.user
            )
            obj.pk = created.pk

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ServiceToken)
class ServiceTokenAdmin(admin.ModelAdmin):
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
            self.message_user(request, "Only administrators may revoke tokens.", level="error")
            return
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(token=token, actor=request.user)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s).")
