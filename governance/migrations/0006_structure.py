"""The structure change: a release names its gate run by a foreign key (it held the run's ledger
subject as a string), gate runs record their re-verifications, and idempotent requests move to
their own app below governance (the table stays; only Django's bookkeeping moves)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def gate_run_from_subject(apps, schema_editor):
    ReleaseRequest = apps.get_model("governance", "ReleaseRequest")
    GateRun = apps.get_model("governance", "GateRun")
    for release in ReleaseRequest.objects.exclude(gate_run_subject=""):
        label, _, pk = release.gate_run_subject.partition(":")
        if label == "governance.gaterun" and pk.isdigit() and GateRun.objects.filter(pk=int(pk)).exists():
            ReleaseRequest.objects.filter(pk=release.pk).update(gate_run_id=int(pk))


def gate_run_to_subject(apps, schema_editor):
    ReleaseRequest = apps.get_model("governance", "ReleaseRequest")
    for release in ReleaseRequest.objects.exclude(gate_run=None):
        ReleaseRequest.objects.filter(pk=release.pk).update(gate_run_subject=f"governance.gaterun:{release.gate_run_id}")


class Migration(migrations.Migration):

    dependencies = [
        ('governance', '0005_releases'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='releaserequest',
            name='gate_run',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='release_requests', to='governance.gaterun'),
        ),
        migrations.RunPython(gate_run_from_subject, gate_run_to_subject),
        migrations.RemoveField(
            model_name='releaserequest',
            name='gate_run_subject',
        ),
        migrations.AlterField(
            model_name='approvalpolicy',
            name='rule',
            field=models.JSONField(help_text='governance.rules.releases.ApprovalRule as JSON.'),
        ),
        migrations.AlterField(
            model_name='releaserequest',
            name='gate_verdict',
            field=models.CharField(blank=True, choices=[('passed', 'passed'), ('failed', 'failed'), ('inconclusive', 'inconclusive'), ('error', 'error'), ('not_applicable', 'not applicable')], max_length=14),
        ),
        migrations.CreateModel(
            name='GateRunReverification',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('reproduced', 'Reproduces'), ('differs', 'Does NOT reproduce')], default='queued', max_length=12)),
                ('differences', models.JSONField(blank=True, default=list, help_text='What differs from the stored result.')),
                ('requested_at', models.DateTimeField(auto_now_add=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('run', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='reverifications', to='governance.gaterun')),
            ],
            options={
                'ordering': ['-requested_at', '-pk'],
            },
        ),
        # The table stays: config.idempotency takes the model over (its 0001 renames the table).
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='IdempotencyRecord')],
            database_operations=[],
        ),
    ]
