"""The per-process memory of verified keys is gone (it did not pay its way: benchmarks/README.md),
and with it whoever listened for `api_key_changed`: drop the triggers that sent it."""

from django.db import migrations

FORWARD = [
    "DROP TRIGGER IF EXISTS dashboard_apikey_truncated ON dashboard_apikey",
    "DROP TRIGGER IF EXISTS dashboard_apikey_deleted ON dashboard_apikey",
    "DROP TRIGGER IF EXISTS dashboard_apikey_updated ON dashboard_apikey",
    "DROP FUNCTION IF EXISTS dashboard_apikey_notify()",
]


def _drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        for sql in FORWARD:
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0009_result_car_bytes"),
    ]

    operations = [
        migrations.RunPython(_drop, migrations.RunPython.noop),
    ]
