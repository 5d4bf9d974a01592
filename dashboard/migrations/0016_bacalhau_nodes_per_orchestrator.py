"""Bacalhau orchestrators that may be hostile (docs/bacalhau.md, "scanning orchestrators").

- A node is the orchestrator that reports it and its node id there: an admin's mapping of a
  node to a storage provider belongs to one orchestrator. A mapping made before (by node id
  alone) is kept for every orchestrator whose imported results ran on a node of that id (the
  mapping was applied to those results already), or, where no result ran on it yet, for every
  orchestrator known; with no orchestrator known there are no results to map and it is dropped.
- Jobs whose executions cannot be read are retried (attempts, retry_at, error) and read in
  the order they were last read (read_at).
- A sweep cut short by the page cap or the pass deadline resumes (resume_token,
  sweep_newest).
- Imports are counted for the hourly import quota (imported_at; null before).
"""

import django.db.models.deletion
from django.db import migrations, models


def _per_orchestrator(apps, schema_editor):
    Node = apps.get_model("dashboard", "BacalhauNode")
    Execution = apps.get_model("dashboard", "BacalhauExecution")
    Orchestrator = apps.get_model("dashboard", "BacalhauOrchestrator")
    every = list(Orchestrator.objects.values_list("pk", flat=True))
    for node in list(Node.objects.filter(orchestrator__isnull=True)):
        seen_on = sorted(
            set(
                Execution.objects.filter(node_id=node.node_id).values_list(
                    "orchestrator_id", flat=True
                )
            )
        )
        for orchestrator_id in seen_on or every:
            Node.objects.create(
                orchestrator_id=orchestrator_id, node_id=node.node_id, provider=node.provider
            )
        node.delete()


def _by_node_id(apps, schema_editor):
    Node = apps.get_model("dashboard", "BacalhauNode")
    kept = set()
    for node in list(Node.objects.order_by("-updated_at")):
        if node.node_id in kept:
            node.delete()
        else:
            kept.add(node.node_id)


class Migration(migrations.Migration):

    dependencies = [
        ('dashboard', '0015_bacalhau_hardening'),
    ]

    operations = [
        migrations.AddField(
            model_name='bacalhaunode',
            name='orchestrator',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, to='dashboard.bacalhauorchestrator'),
        ),
        migrations.AlterField(
            model_name='bacalhaunode',
            name='node_id',
            field=models.CharField(max_length=200),
        ),
        migrations.RunPython(_per_orchestrator, _by_node_id),
        migrations.AlterField(
            model_name='bacalhaunode',
            name='orchestrator',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to='dashboard.bacalhauorchestrator'),
        ),
        migrations.AddConstraint(
            model_name='bacalhaunode',
            constraint=models.UniqueConstraint(fields=('orchestrator', 'node_id'), name='bacalhau_node_per_orchestrator'),
        ),
        migrations.AddField(
            model_name='bacalhauexecution',
            name='imported_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='bacalhauexecution',
            index=models.Index(fields=['orchestrator', 'imported_at'], name='bacalhau_execution_quota'),
        ),
        migrations.AddField(
            model_name='bacalhaujob',
            name='attempts',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='bacalhaujob',
            name='error',
            field=models.TextField(blank=True, default=''),
        ),
        migrations.AddField(
            model_name='bacalhaujob',
            name='read_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='bacalhaujob',
            name='retry_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='bacalhauorchestrator',
            name='resume_token',
            field=models.CharField(blank=True, default='', max_length=500),
        ),
        migrations.AddField(
            model_name='bacalhauorchestrator',
            name='sweep_newest',
            field=models.BigIntegerField(blank=True, null=True),
        ),
    ]
