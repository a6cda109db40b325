"""Image edits: ``jobs.edit`` and the job kinds ``outpaint`` and ``inpaint``.

``jobs.edit`` (JSON) holds an edit's source image, canvas geometry and mask
(``storage.contract.Edit``), so a re-roll repeats the same edit with a new seed.

The kind check constraint gains the two new kinds. On SQLite a constraint cannot be altered,
and a table rebuild would drop the jobs triggers and needs foreign keys off, so the stored
``CREATE TABLE`` text is rewritten in place: SQLite documents this (``writable_schema`` with a
schema version bump) as safe for loosening a CHECK constraint, since no stored row can fail the
wider check.

Revision ID: 0007_edits
Revises: 0005_ops
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_edits"
down_revision: str | None = "0006_engine_capabilities"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = ("imagine", "variation", "upscale", "reroll")
NEW_KINDS = (*OLD_KINDS, "outpaint", "inpaint")


def _check(kinds: tuple[str, ...]) -> str:
    return f"kind IN ({', '.join(repr(kind) for kind in kinds)})"


def _set_kinds(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_jobs_kind"), "jobs", type_="check")
        op.create_check_constraint(op.f("ck_jobs_kind"), "jobs", _check(new))
        return
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'jobs'"
    ).scalar_one()
    before = f"CONSTRAINT ck_jobs_kind CHECK ({_check(old)})"
    if sql.count(before) != 1:
        raise RuntimeError(f"the jobs table does not have the expected kind check: {before}")
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar_one())
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        bind.execute(
            sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'jobs'"),
            {"sql": sql.replace(before, f"CONSTRAINT ck_jobs_kind CHECK ({_check(new)})")},
        )
        # A new schema version makes every connection, this one included, read the schema anew.
        bind.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = [row[0] for row in bind.exec_driver_sql("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise RuntimeError(f"the database failed its integrity check: {problems[:3]}")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("edit", sa.JSON(), nullable=True))
    _set_kinds(OLD_KINDS, NEW_KINDS)


def downgrade() -> None:
    edits = op.get_bind().execute(
        sa.text("SELECT count(*) FROM jobs WHERE kind IN ('outpaint', 'inpaint')")
    )
    count = int(edits.scalar_one())
    if count:
        raise RuntimeError(
            f"{count} outpaint/inpaint jobs exist; the older schema cannot hold them, so "
            "downgrading past 0007_edits would lose them (delete them first if that is intended)"
        )
    _set_kinds(NEW_KINDS, OLD_KINDS)
    op.drop_column("jobs", "edit")
