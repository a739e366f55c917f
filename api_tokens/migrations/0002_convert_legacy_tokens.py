"""Tokens issued before this app (DRF's authtoken, one per user, stored in clear) keep working: each becomes an
ApiToken with the same secret (stored as its digest), and the old table goes. The authtoken app is no longer
installed, so its table would otherwise stay behind with a foreign key that blocks deleting those users."""

import datetime
import hashlib

from django.db import migrations
from django.utils import timezone
from django.utils.dateparse import parse_datetime

LEGACY_TABLE = "authtoken_token"


def convert_legacy_tokens(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("api_tokens", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {LEGACY_TABLE}")  # noqa: S608 - a constant name
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        if isinstance(created, str):
            created = parse_datetime(created)
        if created is not None and timezone.is_naive(created):
            created = timezone.make_aware(created, datetime.UTC)  # the database's time zone with USE_TZ
        token = ApiToken.objects.create(
            user_id=user_id, key_digest=hashlib.sha256(key.encode()).hexdigest(), prefix=key[:8], name="legacy"
        )
        if created is not None:
            ApiToken.objects.filter(pk=token.pk).update(created_at=created)
    schema_editor.execute(f"DROP TABLE {LEGACY_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("api_tokens", "0001_api_tokens")]

    operations = [migrations.RunPython(convert_legacy_tokens, migrations.RunPython.noop)]
