"""Operations: typed prompts, purged images, signed-link nonces, dashboard sessions, audit log.

``jobs.prompt_text`` keeps the /imagine text as typed; ``jobs.images_purged_at`` records that
retention removed a job's image files (the rows stay). ``link_nonces`` makes each signed web
link usable once, ``web_sessions`` holds dashboard logins (hashed ids) and ``audit_log`` every
admin change with the admin's id.

Revision ID: 0005_ops
Revises: 0003_single_posts
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_ops"
down_revision: str | None = "0003_single_posts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = sa.DateTime(timezone=True)
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("prompt_text", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("images_purged_at", Time, nullable=True))
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    op.create_table(
        "link_nonces",
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("used_at", Time, nullable=False),
        sa.Column("expires_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("nonce", name="pk_link_nonces"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("expires_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_web_sessions"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("admin_id", sa.BigInteger(), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_created_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("web_sessions")
    op.drop_table("link_nonces")
    op.drop_index("ix_jobs_created_at", table_name="jobs")
    op.drop_column("jobs", "images_purged_at")
    op.drop_column("jobs", "prompt_text")
