"""The payments app takes over the payment models the ledger app used to hold.

The tables, with their rows, constraints and triggers, are renamed (ledger_* to payments_*);
nothing is copied. Content types move too, so admin log entries and permissions follow.
"""

import django.db.models.deletion
import payments.models
import simple_history.models
from django.conf import settings
from django.db import migrations, models


MOVED_MODELS = ['paymentintent', 'intenttransition', 'policyrule', 'policydecision', 'provider', 'providerroute', 'providerattempt', 'providerevent', 'payout', 'historicalpaymentintent', 'historicalpayout', 'historicalpolicyrule', 'historicalprovider', 'historicalproviderroute']

RENAME_TABLES = """
ALTER TABLE ledger_paymentintent RENAME TO payments_paymentintent;
ALTER TABLE ledger_intenttransition RENAME TO payments_intenttransition;
ALTER TABLE ledger_policyrule RENAME TO payments_policyrule;
ALTER TABLE ledger_policydecision RENAME TO payments_policydecision;
ALTER TABLE ledger_provider RENAME TO payments_provider;
ALTER TABLE ledger_providerroute RENAME TO payments_providerroute;
ALTER TABLE ledger_providerattempt RENAME TO payments_providerattempt;
ALTER TABLE ledger_providerevent RENAME TO payments_providerevent;
ALTER TABLE ledger_payout RENAME TO payments_payout;
ALTER TABLE ledger_historicalpaymentintent RENAME TO payments_historicalpaymentintent;
ALTER TABLE ledger_historicalpayout RENAME TO payments_historicalpayout;
ALTER TABLE ledger_historicalpolicyrule RENAME TO payments_historicalpolicyrule;
ALTER TABLE ledger_historicalprovider RENAME TO payments_historicalprovider;
ALTER TABLE ledger_historicalproviderroute RENAME TO payments_historicalproviderroute;
"""

RENAME_TABLES_BACK = """
ALTER TABLE payments_historicalproviderroute RENAME TO ledger_historicalproviderroute;
ALTER TABLE payments_historicalprovider RENAME TO ledger_historicalprovider;
ALTER TABLE payments_historicalpolicyrule RENAME TO ledger_historicalpolicyrule;
ALTER TABLE payments_historicalpayout RENAME TO ledger_historicalpayout;
ALTER TABLE payments_historicalpaymentintent RENAME TO ledger_historicalpaymentintent;
ALTER TABLE payments_payout RENAME TO ledger_payout;
ALTER TABLE payments_providerevent RENAME TO ledger_providerevent;
ALTER TABLE payments_providerattempt RENAME TO ledger_providerattempt;
ALTER TABLE payments_providerroute RENAME TO ledger_providerroute;
ALTER TABLE payments_provider RENAME TO ledger_provider;
ALTER TABLE payments_policydecision RENAME TO ledger_policydecision;
ALTER TABLE payments_policyrule RENAME TO ledger_policyrule;
ALTER TABLE payments_intenttransition RENAME TO ledger_intenttransition;
ALTER TABLE payments_paymentintent RENAME TO ledger_paymentintent;
"""


def move_content_types(apps, schema_editor, *, from_label="ledger", to_label="payments"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.using(schema_editor.connection.alias).filter(
        app_label=from_label, model__in=MOVED_MODELS).update(app_label=to_label)


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, from_label="payments", to_label="ledger")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('ledger', '0010_payments_move_out'),
        ('tenants', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(RENAME_TABLES, RENAME_TABLES_BACK),
                migrations.RunPython(move_content_types, move_content_types_back),
            ],
            state_operations=[
                migrations.CreateModel(
                    name='PolicyDecision',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('tenant_id', models.CharField(db_index=True, max_length=40)),
                        ('intent_id', models.CharField(db_index=True, max_length=40)),
                        ('rule_id', models.CharField(blank=True, default='', max_length=40)),
                        ('rule_kind', models.CharField(max_length=30)),
                        ('inputs', models.JSONField(default=dict)),
                        ('outcome', models.CharField(choices=[('allow', 'allow'), ('deny', 'deny'), ('review', 'review'), ('route', 'route')], max_length=10)),
                        ('reason', models.CharField(max_length=500)),
                        ('request_id', models.CharField(blank=True, default='', max_length=80)),
                    ],
                    options={
                        'ordering': ['id'],
                    },
                ),
                migrations.CreateModel(
                    name='HistoricalPolicyRule',
                    fields=[
                        ('history_actor', models.CharField(blank=True, default='', max_length=200)),
                        ('id', models.CharField(db_index=True, default=payments.models.new_rule_id, editable=False, max_length=40)),
                        ('kind', models.CharField(choices=[('amount_limit', 'amount limit'), ('velocity_account', 'velocity account'), ('velocity_customer', 'velocity customer'), ('risk_new_account', 'risk new account'), ('routing', 'routing')], max_length=30)),
                        ('position', models.PositiveIntegerField(default=100)),
                        ('enabled', models.BooleanField(default=True)),
                        ('currency', models.CharField(blank=True, default='', help_text='Empty: every currency.', max_length=3)),
                        ('rail', models.CharField(blank=True, default='', help_text='Empty: every rail.', max_length=30)),
                        ('params', models.JSONField(blank=True, default=dict, help_text='amount_limit: {"min": 1, "max": 500000}; velocity_*: {"max_per_day": 1000000}; risk_new_account: {"amount_above": 100000, "younger_than_days": 7}; routing: {"routes": ["rte_..."], "amount_max": null}')),
                        ('description', models.CharField(blank=True, default='', max_length=500)),
                        ('history_id', models.AutoField(primary_key=True, serialize=False)),
                        ('history_date', models.DateTimeField(db_index=True)),
                        ('history_change_reason', models.TextField(null=True)),
                        ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                        ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('tenant', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tenants.tenant')),
                    ],
                    options={
                        'verbose_name': 'historical policy rule',
                        'verbose_name_plural': 'historical policy rules',
                        'ordering': ('-history_date', '-history_id'),
                        'get_latest_by': ('history_date', 'history_id'),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name='HistoricalProvider',
                    fields=[
                        ('history_actor', models.CharField(blank=True, default='', max_length=200)),
                        ('id', models.CharField(db_index=True, default=payments.models.new_provider_id, editable=False, max_length=40)),
                        ('name', models.SlugField(max_length=63)),
                        ('kind', models.CharField(choices=[('sandbox', 'Sandbox')], default='sandbox', max_length=20)),
                        ('mode', models.CharField(choices=[('approve', 'Approve'), ('decline', 'Decline'), ('timeout', 'Time out')], default='approve', max_length=10)),
                        ('outage', models.BooleanField(default=False, help_text='Refuse every request, as a provider that is down.')),
                        ('settle_delay_seconds', models.PositiveIntegerField(default=2, help_text='How long the sandbox takes to settle.')),
                        ('created_at', models.DateTimeField(blank=True, editable=False)),
                        ('history_id', models.AutoField(primary_key=True, serialize=False)),
                        ('history_date', models.DateTimeField(db_index=True)),
                        ('history_change_reason', models.TextField(null=True)),
                        ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                        ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('tenant', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tenants.tenant')),
                    ],
                    options={
                        'verbose_name': 'historical provider',
                        'verbose_name_plural': 'historical providers',
                        'ordering': ('-history_date', '-history_id'),
                        'get_latest_by': ('history_date', 'history_id'),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name='PaymentIntent',
                    fields=[
                        ('id', models.CharField(default=payments.models.new_intent_id, editable=False, max_length=40, primary_key=True, serialize=False)),
                        ('amount', models.BigIntegerField()),
                        ('currency', models.CharField(max_length=3)),
                        ('rail', models.CharField(blank=True, default='', max_length=30)),
                        ('status', models.CharField(choices=[('requires_confirmation', 'requires_confirmation'), ('requires_review', 'requires_review'), ('processing', 'processing'), ('succeeded', 'succeeded'), ('failed', 'failed'), ('canceled', 'canceled')], default='requires_confirmation', max_length=30)),
                        ('route_plan', models.JSONField(blank=True, default=list, help_text='Route ids in the order the policy chose.')),
                        ('provider_reference', models.CharField(blank=True, default='', max_length=100)),
                        ('failure_reason', models.CharField(blank=True, default='', max_length=500)),
                        ('metadata', models.JSONField(blank=True, default=dict)),
                        ('source_request_id', models.CharField(blank=True, default='', max_length=80)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('destination_account', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ledger.account')),
                        ('hold', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ledger.hold')),
                        ('source_account', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ledger.account')),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='payment_intents', to='tenants.tenant')),
                    ],
                    options={
                        'ordering': ['-id'],
                    },
                ),
                migrations.CreateModel(
                    name='IntentTransition',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('from_status', models.CharField(blank=True, default='', max_length=30)),
                        ('to_status', models.CharField(max_length=30)),
                        ('at', models.DateTimeField()),
                        ('actor', models.CharField(max_length=200)),
                        ('reason', models.CharField(blank=True, default='', max_length=500)),
                        ('intent', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='transitions', to='payments.paymentintent')),
                    ],
                    options={
                        'ordering': ['intent', 'at', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='Provider',
                    fields=[
                        ('id', models.CharField(default=payments.models.new_provider_id, editable=False, max_length=40, primary_key=True, serialize=False)),
                        ('name', models.SlugField(max_length=63)),
                        ('kind', models.CharField(choices=[('sandbox', 'Sandbox')], default='sandbox', max_length=20)),
                        ('mode', models.CharField(choices=[('approve', 'Approve'), ('decline', 'Decline'), ('timeout', 'Time out')], default='approve', max_length=10)),
                        ('outage', models.BooleanField(default=False, help_text='Refuse every request, as a provider that is down.')),
                        ('settle_delay_seconds', models.PositiveIntegerField(default=2, help_text='How long the sandbox takes to settle.')),
                        ('secret', models.CharField(editable=False, max_length=100)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='providers', to='tenants.tenant')),
                    ],
                    options={
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='Payout',
                    fields=[
                        ('id', models.CharField(default=payments.models.new_payout_id, editable=False, max_length=40, primary_key=True, serialize=False)),
                        ('amount', models.BigIntegerField()),
                        ('currency', models.CharField(max_length=3)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('paid', 'Paid'), ('failed', 'Failed')], default='pending', max_length=10)),
                        ('failure_reason', models.CharField(blank=True, default='', max_length=500)),
                        ('metadata', models.JSONField(blank=True, default=dict)),
                        ('source_request_id', models.CharField(blank=True, default='', max_length=80)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('resolved_at', models.DateTimeField(blank=True, null=True)),
                        ('account', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='payouts', to='ledger.account')),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='payouts', to='tenants.tenant')),
                        ('provider', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='payouts', to='payments.provider')),
                    ],
                    options={
                        'ordering': ['-id'],
                    },
                ),
                migrations.CreateModel(
                    name='HistoricalProviderRoute',
                    fields=[
                        ('history_actor', models.CharField(blank=True, default='', max_length=200)),
                        ('id', models.CharField(db_index=True, default=payments.models.new_route_id, editable=False, max_length=40)),
                        ('rail', models.CharField(default='card', max_length=30)),
                        ('priority', models.PositiveIntegerField(default=100, help_text='Lower goes first.')),
                        ('currencies', models.JSONField(default=list, help_text='e.g. ["USD", "EUR"]; empty: every currency')),
                        ('enabled', models.BooleanField(default=True)),
                        ('failure_threshold', models.PositiveIntegerField(default=3)),
                        ('cooldown_seconds', models.PositiveIntegerField(default=60)),
                        ('consecutive_failures', models.PositiveIntegerField(default=0, editable=False)),
                        ('down_until', models.DateTimeField(blank=True, editable=False, null=True)),
                        ('history_id', models.AutoField(primary_key=True, serialize=False)),
                        ('history_date', models.DateTimeField(db_index=True)),
                        ('history_change_reason', models.TextField(null=True)),
                        ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                        ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('tenant', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tenants.tenant')),
                        ('provider', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='payments.provider')),
                    ],
                    options={
                        'verbose_name': 'historical provider route',
                        'verbose_name_plural': 'historical provider routes',
                        'ordering': ('-history_date', '-history_id'),
                        'get_latest_by': ('history_date', 'history_id'),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name='HistoricalPayout',
                    fields=[
                        ('history_actor', models.CharField(blank=True, default='', max_length=200)),
                        ('id', models.CharField(db_index=True, default=payments.models.new_payout_id, editable=False, max_length=40)),
                        ('amount', models.BigIntegerField()),
                        ('currency', models.CharField(max_length=3)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('paid', 'Paid'), ('failed', 'Failed')], default='pending', max_length=10)),
                        ('failure_reason', models.CharField(blank=True, default='', max_length=500)),
                        ('metadata', models.JSONField(blank=True, default=dict)),
                        ('source_request_id', models.CharField(blank=True, default='', max_length=80)),
                        ('created_at', models.DateTimeField(blank=True, editable=False)),
                        ('resolved_at', models.DateTimeField(blank=True, null=True)),
                        ('history_id', models.AutoField(primary_key=True, serialize=False)),
                        ('history_date', models.DateTimeField(db_index=True)),
                        ('history_change_reason', models.TextField(null=True)),
                        ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                        ('account', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='ledger.account')),
                        ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('tenant', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tenants.tenant')),
                        ('provider', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='payments.provider')),
                    ],
                    options={
                        'verbose_name': 'historical payout',
                        'verbose_name_plural': 'historical payouts',
                        'ordering': ('-history_date', '-history_id'),
                        'get_latest_by': ('history_date', 'history_id'),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name='ProviderEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('external_id', models.CharField(max_length=100)),
                        ('type', models.CharField(max_length=50)),
                        ('payload', models.JSONField()),
                        ('outcome', models.CharField(blank=True, default='', max_length=200)),
                        ('received_at', models.DateTimeField(auto_now_add=True)),
                        ('intent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='provider_events', to='payments.paymentintent')),
                        ('provider', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='events', to='payments.provider')),
                    ],
                    options={
                        'ordering': ['-id'],
                    },
                ),
                migrations.CreateModel(
                    name='ProviderRoute',
                    fields=[
                        ('id', models.CharField(default=payments.models.new_route_id, editable=False, max_length=40, primary_key=True, serialize=False)),
                        ('rail', models.CharField(default='card', max_length=30)),
                        ('priority', models.PositiveIntegerField(default=100, help_text='Lower goes first.')),
                        ('currencies', models.JSONField(default=list, help_text='e.g. ["USD", "EUR"]; empty: every currency')),
                        ('enabled', models.BooleanField(default=True)),
                        ('failure_threshold', models.PositiveIntegerField(default=3)),
                        ('cooldown_seconds', models.PositiveIntegerField(default=60)),
                        ('consecutive_failures', models.PositiveIntegerField(default=0, editable=False)),
                        ('down_until', models.DateTimeField(blank=True, editable=False, null=True)),
                        ('provider', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='routes', to='payments.provider')),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='provider_routes', to='tenants.tenant')),
                    ],
                    options={
                        'ordering': ['priority', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='ProviderAttempt',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('request', models.JSONField(default=dict)),
                        ('outcome', models.CharField(max_length=20)),
                        ('reference', models.CharField(blank=True, default='', max_length=100)),
                        ('latency_ms', models.PositiveIntegerField(default=0)),
                        ('error', models.CharField(blank=True, default='', max_length=500)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('intent', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='provider_attempts', to='payments.paymentintent')),
                        ('provider', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='attempts', to='payments.provider')),
                        ('route', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='attempts', to='payments.providerroute')),
                    ],
                    options={
                        'ordering': ['intent', 'id'],
                    },
                ),
                migrations.AddField(
                    model_name='paymentintent',
                    name='route',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='payments.providerroute'),
                ),
                migrations.CreateModel(
                    name='HistoricalPaymentIntent',
                    fields=[
                        ('history_actor', models.CharField(blank=True, default='', max_length=200)),
                        ('id', models.CharField(db_index=True, default=payments.models.new_intent_id, editable=False, max_length=40)),
                        ('amount', models.BigIntegerField()),
                        ('currency', models.CharField(max_length=3)),
                        ('rail', models.CharField(blank=True, default='', max_length=30)),
                        ('status', models.CharField(choices=[('requires_confirmation', 'requires_confirmation'), ('requires_review', 'requires_review'), ('processing', 'processing'), ('succeeded', 'succeeded'), ('failed', 'failed'), ('canceled', 'canceled')], default='requires_confirmation', max_length=30)),
                        ('route_plan', models.JSONField(blank=True, default=list, help_text='Route ids in the order the policy chose.')),
                        ('provider_reference', models.CharField(blank=True, default='', max_length=100)),
                        ('failure_reason', models.CharField(blank=True, default='', max_length=500)),
                        ('metadata', models.JSONField(blank=True, default=dict)),
                        ('source_request_id', models.CharField(blank=True, default='', max_length=80)),
                        ('created_at', models.DateTimeField(blank=True, editable=False)),
                        ('history_id', models.AutoField(primary_key=True, serialize=False)),
                        ('history_date', models.DateTimeField(db_index=True)),
                        ('history_change_reason', models.TextField(null=True)),
                        ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                        ('destination_account', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='ledger.account')),
                        ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('hold', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='ledger.hold')),
                        ('source_account', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='ledger.account')),
                        ('tenant', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='tenants.tenant')),
                        ('route', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='payments.providerroute')),
                    ],
                    options={
                        'verbose_name': 'historical payment intent',
                        'verbose_name_plural': 'historical payment intents',
                        'ordering': ('-history_date', '-history_id'),
                        'get_latest_by': ('history_date', 'history_id'),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.CreateModel(
                    name='PolicyRule',
                    fields=[
                        ('id', models.CharField(default=payments.models.new_rule_id, editable=False, max_length=40, primary_key=True, serialize=False)),
                        ('kind', models.CharField(choices=[('amount_limit', 'amount limit'), ('velocity_account', 'velocity account'), ('velocity_customer', 'velocity customer'), ('risk_new_account', 'risk new account'), ('routing', 'routing')], max_length=30)),
                        ('position', models.PositiveIntegerField(default=100)),
                        ('enabled', models.BooleanField(default=True)),
                        ('currency', models.CharField(blank=True, default='', help_text='Empty: every currency.', max_length=3)),
                        ('rail', models.CharField(blank=True, default='', help_text='Empty: every rail.', max_length=30)),
                        ('params', models.JSONField(blank=True, default=dict, help_text='amount_limit: {"min": 1, "max": 500000}; velocity_*: {"max_per_day": 1000000}; risk_new_account: {"amount_above": 100000, "younger_than_days": 7}; routing: {"routes": ["rte_..."], "amount_max": null}')),
                        ('description', models.CharField(blank=True, default='', max_length=500)),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='policy_rules', to='tenants.tenant')),
                    ],
                    options={
                        'ordering': ['position', 'id'],
                        'constraints': [models.CheckConstraint(condition=models.Q(('kind__in', ['amount_limit', 'velocity_account', 'velocity_customer', 'risk_new_account', 'routing'])), name='policy_rule_kind_known')],
                    },
                ),
                migrations.AddConstraint(
                    model_name='provider',
                    constraint=models.UniqueConstraint(fields=('tenant', 'name'), name='provider_name_unique_per_tenant'),
                ),
                migrations.AddConstraint(
                    model_name='payout',
                    constraint=models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='payout_amount_positive'),
                ),
                migrations.AddConstraint(
                    model_name='payout',
                    constraint=models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'paid', 'failed'])), name='payout_status_known'),
                ),
                migrations.AddConstraint(
                    model_name='providerevent',
                    constraint=models.UniqueConstraint(fields=('provider', 'external_id'), name='provider_event_once'),
                ),
                migrations.AddIndex(
                    model_name='paymentintent',
                    index=models.Index(fields=['tenant', '-id'], name='intent_tenant_recent'),
                ),
                migrations.AddIndex(
                    model_name='paymentintent',
                    index=models.Index(fields=['tenant', 'status'], name='intent_tenant_status'),
                ),
                migrations.AddIndex(
                    model_name='paymentintent',
                    index=models.Index(fields=['source_account', 'created_at'], name='intent_source_day'),
                ),
                migrations.AddConstraint(
                    model_name='paymentintent',
                    constraint=models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='intent_amount_positive'),
                ),
                migrations.AddConstraint(
                    model_name='paymentintent',
                    constraint=models.CheckConstraint(condition=models.Q(('status__in', ['requires_confirmation', 'requires_review', 'processing', 'succeeded', 'failed', 'canceled'])), name='intent_status_known'),
                ),
            ],
        ),
    ]
