from django.contrib import admin

from api_tokens.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff can see who has API access and revoke it (delete); secrets are never shown (only digests exist)."""

    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "expires_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "name", "prefix")
    readonly_fields = ("user", "prefix", "name", "created_at", "last_used_at", "expires_at")
    exclude = ("key_digest",)

    def has_add_permission(self, request) -> bool:
        return False  # tokens are issued to their owner through POST /api/token/
