"""Alembic migrations of the imagine database (one head); applied by ``storage.migrate``."""
