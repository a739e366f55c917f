"""The "clinician" group: its members may open other people's predictions (classifier.view_prediction)."""

from django.db import migrations

GROUP = "clinician"


def create_clinician_group(apps, schema_editor) -> None:
    # On a fresh database the permission rows are only created after all migrations (post_migrate): make the
    # one we need here, exactly as Django would name it, so that the group is never empty.
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="classifier", model="prediction")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="view_prediction", defaults={"name": "Can view prediction"}
    )
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(permission)


def remove_clinician_group(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_prediction_access"),
        ("classifier", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_clinician_group, remove_clinician_group)]
