"""One handle on everything stored: database, queue, quotas, users and images."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from storage.config import StorageSettings
from storage.db import Database
from storage.images import ImageStore
from storage.queue import JobQueue
from storage.quotas import Quotas
from storage.stores import ManagedImageStore, open_image_store
from storage.users import Users


@dataclass
class Storage:
    """The storage services of one process; close it (or use ``async with``) when done."""

    db: Database
    queue: JobQueue
    quotas: Quotas
    users: Users
    images: ImageStore

    async def close(self) -> None:
        """Close the database and the image store's connections."""
        try:
            await self.db.close()
        finally:
            if isinstance(self.images, ManagedImageStore):
                await self.images.close()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def open_storage(
    settings: StorageSettings, *, clock: Callable[[], datetime] | None = None
) -> Storage:
    """Open the configured database and image store and build the services over them.

    No migrations here. An image store that cannot be used raises ImageStoreError, one sentence
    saying what is wrong (missing bucket, refused credentials), before anything else opens.
    """
    images = await open_image_store(settings.image_store_config)
    try:
        db = await Database.open(
            settings.database,
            busy_timeout=settings.database_busy_timeout,
            retry_seconds=settings.database_retry_seconds,
        )
    except BaseException:
        await images.close()
        raise
    limits = settings.limits
    return Storage(
        db=db,
        queue=JobQueue(
            db,
            lease_seconds=settings.lease_seconds,
            max_attempts=settings.max_attempts,
            limits=limits,
            clock=clock,
            delivery_max_attempts=settings.delivery_max_attempts,
            delivery_retry_seconds=settings.delivery_retry_seconds,
        ),
        quotas=Quotas(db, limits, clock=clock),
        users=Users(db, clock=clock),
        images=images,
    )
