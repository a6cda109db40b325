"""Claim index and per-user running counter: ``ix_jobs_queued`` and ``users.running``.

Each user's queued jobs get their own small index in claim order (priority, then oldest), which
replaces ``ix_jobs_claim``. ``users.running`` counts the user's running jobs; triggers on
``jobs`` keep it exact in the same transaction as every status change, whoever writes it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUED = sa.text("status = 'queued'")

# The WHEN clauses keep the function out of every write that does not start or stop a job.
POSTGRESQL_TRIGGERS = (
    """
    CREATE FUNCTION jobs_count_running() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'running' THEN
            UPDATE users SET running = running - 1 WHERE id = OLD.user_id;
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status = 'running' THEN
            UPDATE users SET running = running + 1 WHERE id = NEW.user_id;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER jobs_count_running_insert AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.status = 'running') EXECUTE FUNCTION jobs_count_running()
    """,
    """
    CREATE TRIGGER jobs_count_running_delete AFTER DELETE ON jobs
    FOR EACH ROW WHEN (OLD.status = 'running') EXECUTE FUNCTION jobs_count_running()
    """,
    """
    CREATE TRIGGER jobs_count_running_update AFTER UPDATE OF status, user_id ON jobs
    FOR EACH ROW WHEN (
        (OLD.status = 'running' OR NEW.status = 'running')
        AND (OLD.status <> NEW.status OR OLD.user_id <> NEW.user_id)
    ) EXECUTE FUNCTION jobs_count_running()
    """,
)

SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER jobs_count_running_insert AFTER INSERT ON jobs
    WHEN NEW.status = 'running'
    BEGIN
        UPDATE users SET running = running + 1 WHERE id = NEW.user_id;
    END
    """,
    """
    CREATE TRIGGER jobs_count_running_delete AFTER DELETE ON jobs
    WHEN OLD.status = 'running'
    BEGIN
        UPDATE users SET running = running - 1 WHERE id = OLD.user_id;
    END
    """,
    """
    CREATE TRIGGER jobs_count_running_update AFTER UPDATE OF status, user_id ON jobs
    WHEN OLD.status IS NOT NEW.status OR OLD.user_id IS NOT NEW.user_id
    BEGIN
        UPDATE users SET running = running - 1
        WHERE id = OLD.user_id AND OLD.status = 'running';
        UPDATE users SET running = running + 1
        WHERE id = NEW.user_id AND NEW.status = 'running';
    END
    """,
)


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("running", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.execute(
        "UPDATE users SET running = (SELECT count(*) FROM jobs "
        "WHERE jobs.user_id = users.id AND jobs.status = 'running')"
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.create_index(
        "ix_jobs_queued",
        "jobs",
        ["user_id", sa.text("priority DESC"), "id"],
        unique=False,
        sqlite_where=QUEUED,
        postgresql_where=QUEUED,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_queued", table_name="jobs", sqlite_where=QUEUED, postgresql_where=QUEUED)
    op.create_index("ix_jobs_claim", "jobs", ["status", "priority", "id"], unique=False)
    postgresql = op.get_bind().dialect.name == "postgresql"
    for suffix in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER jobs_count_running_{suffix}" + (" ON jobs" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION jobs_count_running()")
    op.drop_column("users", "running")
