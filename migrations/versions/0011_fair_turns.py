"""Fair turns: between users with as many turns taken, the one served longest ago goes first.

``users.last_claimed_at`` is when a job of the user last started running. The claim ranks by
(priority, turn, last_claimed_at with never first, id); without it, users with as many running
jobs were served oldest job id first, so with one worker and three busy users the two with the
older jobs alternated and the third waited. The ``jobs`` triggers of migration 0002 set it in
the same write that counts the job into ``users.running``.

Revision ID: 0011_fair_turns
Revises: 0010_references
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_fair_turns"
down_revision: str | None = "0010_references"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _postgresql_function(claimed: str) -> str:
    return f"""
    CREATE OR REPLACE FUNCTION jobs_count_running() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'running' THEN
            UPDATE users SET running = running - 1 WHERE id = OLD.user_id;
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status = 'running' THEN
            UPDATE users SET running = running + 1{claimed} WHERE id = NEW.user_id;
        END IF;
        RETURN NULL;
    END
    $$
    """


def _sqlite_triggers(claimed: str) -> tuple[str, ...]:
    return (
        "DROP TRIGGER jobs_count_running_insert",
        "DROP TRIGGER jobs_count_running_update",
        f"""
        CREATE TRIGGER jobs_count_running_insert AFTER INSERT ON jobs
        WHEN NEW.status = 'running'
        BEGIN
            UPDATE users SET running = running + 1{claimed} WHERE id = NEW.user_id;
        END
        """,
        f"""
        CREATE TRIGGER jobs_count_running_update AFTER UPDATE OF status, user_id ON jobs
        WHEN OLD.status IS NOT NEW.status OR OLD.user_id IS NOT NEW.user_id
        BEGIN
            UPDATE users SET running = running - 1
            WHERE id = OLD.user_id AND OLD.status = 'running';
            UPDATE users SET running = running + 1{claimed}
            WHERE id = NEW.user_id AND NEW.status = 'running';
        END
        """,
    )


def _triggers(claimed: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_postgresql_function(claimed))
    else:
        for statement in _sqlite_triggers(claimed):
            op.execute(statement)


def upgrade() -> None:
    op.add_column("users", sa.Column("last_claimed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE users SET last_claimed_at = "
        "(SELECT max(started_at) FROM jobs WHERE jobs.user_id = users.id)"
    )
    _triggers(", last_claimed_at = NEW.started_at")


def downgrade() -> None:
    _triggers("")
    op.drop_column("users", "last_claimed_at")
