"""The user admin: Django's, except that deleting a user goes through the account service."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.forms import AdminAddUserForm
from accounts.services import user_delete, user_password_changed

User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class PatientAwareUserAdmin(UserAdmin):
    """Deleting a user here deletes their photo files too (a cascade alone would leave them on disk); setting a
        password here revokes the old credentials, as the password pages do; a new username must not look like
    another (accounts/usernames.py)."""

    add_form = AdminAddUserForm

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = ""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:  # the form was valid and saved
            user = self.get_object(request, unquote(id))
            if user is not None:
                user_password_changed(user=user)
        return response

    def delete_model(self, request: HttpRequest, obj) -> None:
        user_delete(user=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for user in queryset:
            user_delete(user=user)
