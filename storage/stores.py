"""The one place that builds the configured image store: local files or an S3-compatible bucket.

``IMAGINE_IMAGE_STORE`` is ``file`` (content-addressed files under the data dir, the default) or
``s3://BUCKET[/PREFIX]``; ``IMAGINE_S3_ENDPOINT_URL`` points at MinIO, R2, B2 or a local S3
server; credentials and region come from the standard ``AWS_*`` variables (or, when those are
unset, botocore's own chain: profile files, instance roles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from storage.errors import InvalidValue
from storage.images import FileImageStore, ImageStore
from storage.s3 import S3ImageStore, parse_location

FILE = "file"


@runtime_checkable
class ManagedImageStore(ImageStore, Protocol):
    """An image store that also answers ``exists`` and holds connections until ``close``."""

    async def exists(self, sha256: str) -> bool:
        """Whether the store holds ``sha256``."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class ImageStoreConfig:
    """Which image store to open, and how to reach it."""

    store: str = FILE
    data_dir: Path = Path("./data")
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)


def check_store(text: str) -> str:
    """``text`` if it names a store (``file`` or ``s3://BUCKET[/PREFIX]``), else InvalidValue."""
    if text == FILE:
        return text
    if not text.startswith("s3://"):
        raise InvalidValue(f"image_store must be 'file' or 's3://BUCKET[/PREFIX]'; got {text!r}")
    parse_location(text)
    return text


def image_store(config: ImageStoreConfig) -> FileImageStore | S3ImageStore:
    """The configured store, not yet contacted."""
    if check_store(config.store) == FILE:
        return FileImageStore(Path(config.data_dir) / "images")
    return S3ImageStore(
        parse_location(config.store),
        endpoint_url=config.endpoint_url or None,
        region=config.region or None,
        access_key_id=config.access_key_id or None,
        secret_access_key=config.secret_access_key or None,
        session_token=config.session_token or None,
    )


async def open_image_store(config: ImageStoreConfig) -> FileImageStore | S3ImageStore:
    """The configured store, checked: ImageStoreError (one sentence) when it cannot be used."""
    store = image_store(config)
    if isinstance(store, S3ImageStore):
        try:
            await store.check()
        except BaseException:
            await store.close()
            raise
    return store
