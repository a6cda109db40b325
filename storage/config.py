"""The settings slice of the storage package: where data lives, leases and default limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.limits import Limits
from storage.stores import ImageStoreConfig


@dataclass(frozen=True)
class StorageSettings:
    """What ``open_storage`` needs; the process settings build it (``Settings.storage()``)."""

    # The SQLAlchemy async URL, already resolved (SQLite under the data dir by default).
    database: str
    data_dir: Path
    # SQLite's busy timeout per attempt; how long a write retries a locked/unreachable database.
    database_busy_timeout: float
    database_retry_seconds: float
    lease_seconds: float
    max_attempts: int
    # The server's default limits; admins override them per user and server-wide.
    limits: Limits
    # Which image store to open: files under the data dir, or an S3-compatible bucket.
    image_store_config: ImageStoreConfig
    # Delivery retries: the first delay (doubling, at most 15 min), and attempts before giving up.
    delivery_retry_seconds: float
    delivery_max_attempts: int

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database.startswith("sqlite")
