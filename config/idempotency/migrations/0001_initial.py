"""Take over the replay cache of idempotent requests from governance: its table already exists
(governance 0005 created it), so the model enters this app's state only, then the table is
renamed to this app's name."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("governance", "0006_structure"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='IdempotencyRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key', models.CharField(max_length=200)),
                        ('endpoint', models.CharField(max_length=200)),
                        ('request_sha256', models.CharField(max_length=64)),
                        ('status_code', models.PositiveSmallIntegerField()),
                        ('response', models.JSONField()),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'governance_idempotencyrecord',
                        'constraints': [models.UniqueConstraint(fields=('user', 'key'), name='idempotency_unique_key_per_user')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name='idempotencyrecord', table=None),
    ]
