"""PostgreSQL told every listening process when an API key changed (for a per-process memory
of verified keys, removed since; migration 0010 drops these triggers).

Triggers rather than application code, so that no way of changing a key is missed: the
revoke service, the admin, the CLI, a migration, psql. An update that touches only
last_used_at (bookkeeping, once a minute per key) is not a change worth forgetting keys for.
"""

from django.db import migrations

FORWARD = [
    """
CREATE FUNCTION dashboard_apikey_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('api_key_changed', '');
    RETURN NULL;
END
$$""",
    """
CREATE TRIGGER dashboard_apikey_updated AFTER UPDATE ON dashboard_apikey
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at'))
    EXECUTE FUNCTION dashboard_apikey_notify()""",
    """
CREATE TRIGGER dashboard_apikey_deleted AFTER DELETE ON dashboard_apikey
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_apikey_notify()""",
    """
CREATE TRIGGER dashboard_apikey_truncated AFTER TRUNCATE ON dashboard_apikey
    FOR EACH STATEMENT EXECUTE FUNCTION dashboard_apikey_notify()""",
]

BACKWARD = [
    "DROP TRIGGER IF EXISTS dashboard_apikey_truncated ON dashboard_apikey",
    "DROP TRIGGER IF EXISTS dashboard_apikey_deleted ON dashboard_apikey",
    "DROP TRIGGER IF EXISTS dashboard_apikey_updated ON dashboard_apikey",
    "DROP FUNCTION IF EXISTS dashboard_apikey_notify()",
]


def _on_postgresql(statements: list[str]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0005_chain_flags"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(FORWARD), _on_postgresql(BACKWARD)),
    ]
