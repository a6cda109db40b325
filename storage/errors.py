"""Typed storage errors; ``str()`` of each is a clear sentence fit to show a user or admin."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error the storage layer raises on purpose."""


class QuotaExceeded(StorageError):
    """The user's image quota for the period would be exceeded."""


class LimitExceeded(StorageError):
    """A concurrency or queue cap would be exceeded."""


class UserBanned(StorageError):
    """The user is banned and may not queue jobs."""


class UserNotFound(StorageError):
    """No such user has ever been recorded."""


class JobNotFound(StorageError):
    """No job with that id exists."""


class NotJobOwner(StorageError):
    """The job belongs to another user."""


class NotCancellable(StorageError):
    """The job already finished, so there is nothing to cancel."""


class LeaseLost(StorageError):
    """The worker no longer holds the job (its lease expired and was taken, or it finished)."""


class DatabaseUnavailable(StorageError):
    """The database stayed locked (SQLite) or unreachable past the retry budget; try again later.

    Transient by nature: callers that can wait retry the operation, the bot tells the user.
    ``str()`` is the sentence for users; ``detail`` (driver error, attempts) is for logs.
    """

    def __init__(self, detail: str) -> None:
        super().__init__("The database is busy right now; please try again in a moment.")
        self.detail = detail


class InvalidValue(StorageError):
    """An argument is out of range or malformed (negative limit, unknown period, bad hash...)."""


class BlobNotFound(StorageError):
    """The image store has no blob with that hash."""


class ImageStoreError(StorageError):
    """The image store cannot be used: missing bucket, refused credentials, unreachable."""
