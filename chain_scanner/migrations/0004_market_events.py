# Market events replace the rotating recheck: each deal is re-read from state once
# (checked_epoch 0), because changes the old rotation had not reached yet are in no event
# the scanner will read (its checkpoint is past them).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('chain_scanner', '0003_dump_bulk_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='DealEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('deal_id', models.BigIntegerField(db_index=True)),
                ('kind', models.CharField(choices=[('deal-published', 'Published'), ('deal-activated', 'Activated'), ('deal-terminated', 'Terminated'), ('deal-completed', 'Completed')], max_length=16)),
                ('height', models.BigIntegerField(db_index=True)),
                ('msg_cid', models.CharField(max_length=128)),
                ('tipset_hash', models.CharField(blank=True, default='', max_length=16)),
            ],
        ),
        migrations.RenameField(
            model_name='scannercheckpoint',
            old_name='claims_height',
            new_name='events_height',
        ),
        migrations.RenameField(
            model_name='scannercheckpoint',
            old_name='claims_tipset_key',
            new_name='events_tipset_key',
        ),
        migrations.RemoveField(
            model_name='scannercheckpoint',
            name='recheck_cursor',
        ),
        migrations.RemoveField(
            model_name='scannercheckpoint',
            name='recheck_end',
        ),
        migrations.RemoveField(
            model_name='scannercheckpoint',
            name='recheck_height',
        ),
        migrations.AddField(
            model_name='scannercheckpoint',
            name='event_counts',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddIndex(
            model_name='deal',
            index=models.Index(condition=models.Q(('checked_epoch', 0)), fields=['deal_id'], name='deal_to_reread'),
        ),
        migrations.RunSQL(
            "UPDATE chain_scanner_deal SET checked_epoch = 0", reverse_sql=migrations.RunSQL.noop
        ),
        migrations.AddConstraint(
            model_name='dealevent',
            constraint=models.UniqueConstraint(fields=('height', 'msg_cid', 'kind', 'deal_id'), name='deal_event_identity'),
        ),
    ]
