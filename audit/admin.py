"""The audit log in the admin: superusers read it; nobody adds, edits or deletes a row there."""

from django.contrib import admin
from django.http import HttpRequest

from audit.models import PredictionAccess


@admin.register(PredictionAccess)
class PredictionAccessAdmin(admin.ModelAdmin):
    list_display = ("accessed_at", "viewer_username", "owner_username", "prediction_pk", "method", "url")
    list_filter = ("method",)
    search_fields = ("viewer_username", "owner_username", "=prediction_pk")
    date_hierarchy = "accessed_at"
    readonly_fields = [field.name for field in PredictionAccess._meta.fields]

    # Superusers only, whatever permissions a staff account was given: the people being audited must not be able
    # to read (or learn from) the log of their own accesses.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
