from django.db import migrations


def drop_like_index(apps, schema_editor):
    # Django gives a CharField primary key a second, LIKE-only index on PostgreSQL. We never
    # query CIDs with LIKE, and every row of a blessed-cache rebuild would have to be added
    # to it.
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'chain_scanner_blessedcid' "
            "AND indexname LIKE '%%_like'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("chain_scanner", "0001_initial")]
    operations = [migrations.RunPython(drop_like_index, migrations.RunPython.noop)]
