"""Database triggers that refuse UPDATE and DELETE of ledger rows (and TRUNCATE on PostgreSQL).

They hold against raw SQL, bulk tools and the admin alike; only a database owner who drops or
disables them can change a row, and `ledger verify` catches what such a change leaves behind.
"""

from django.db import migrations

TABLES = ["audit_ledgerentry", "audit_treenode", "audit_checkpoint"]

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'custos ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


def postgres_sql(table):
    return [
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();",
    ]


def sqlite_sql(table):
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'custos ledger is append-only: UPDATE on {table} refused'); END;",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'custos ledger is append-only: DELETE on {table} refused'); END;",
    ]


def trigger_sql(vendor):
    """The statements that create the triggers on VENDOR (also used by tests to restore them)."""
    if vendor == "postgresql":
        return [POSTGRES_FUNCTION] + [s for t in TABLES for s in postgres_sql(t)]
    if vendor == "sqlite":
        return [s for t in TABLES for s in sqlite_sql(t)]
    raise RuntimeError(f"The ledger's append-only triggers support PostgreSQL and SQLite, not {vendor}.")


def drop_sql(vendor):
    if vendor == "postgresql":
        drops = [f"DROP TRIGGER IF EXISTS {t}_{s} ON {t};" for t in TABLES for s in ("append_only", "no_truncate")]
        return drops + ["DROP FUNCTION IF EXISTS audit_refuse_change();"]
    return [f"DROP TRIGGER IF EXISTS {t}_{s};" for t in TABLES for s in ("no_update", "no_delete")]


def create(apps, schema_editor):
    for statement in trigger_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def drop(apps, schema_editor):
    for statement in drop_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_tree_checkpoints")]
    operations = [migrations.RunPython(create, drop)]
