"""Content-addressed blob storage for images (PNG results, input images)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from storage.errors import BlobNotFound, InvalidValue

_SHA256 = re.compile(r"[0-9a-f]{64}")
_SUFFIX = re.compile(r"\.[a-z0-9]{1,8}")


@dataclass(frozen=True)
class StoredBlob:
    """What the store returns for a ``put``: the content hash, its size and where it lives."""

    sha256: str
    size: int
    path: str


@runtime_checkable
class ImageStore(Protocol):
    """Where image bytes live: local files by default, an object store later."""

    async def put(self, data: bytes, suffix: str = ".png") -> StoredBlob:
        """Store ``data`` under its SHA-256 (idempotent)."""
        ...

    async def get(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256`` (BlobNotFound if none)."""
        ...

    def path(self, sha256: str) -> Path | None:
        """A local file with the bytes, when the store has one."""
        ...

    async def delete(self, sha256: str) -> bool:
        """Remove the bytes stored under ``sha256``; False when there were none."""
        ...


def check_sha256(sha256: str) -> str:
    """``sha256`` if it is 64 lowercase hex digits, else InvalidValue."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise InvalidValue(f"an image hash must be 64 lowercase hex digits, got {sha256!r}")
    return sha256


def check_suffix(suffix: str) -> str:
    """``suffix`` if it is a dot and 1-8 lowercase letters or digits, else InvalidValue."""
    if not isinstance(suffix, str) or not _SUFFIX.fullmatch(suffix):
        raise InvalidValue(
            f"file suffix must be a dot and 1-8 letters or digits, like '.png'; got {suffix!r}"
        )
    return suffix


class FileImageStore:
    """Blobs as files ``ROOT/ab/cd/<sha256><suffix>``, written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4]

    async def put(self, data: bytes, suffix: str = ".png") -> StoredBlob:
        """Store ``data``; storing the same bytes again writes nothing."""
        check_suffix(suffix)
        return await asyncio.to_thread(self._put, bytes(data), suffix)

    def _put(self, data: bytes, suffix: str) -> StoredBlob:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self._dir(sha256) / f"{sha256}{suffix}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=suffix)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                # Atomic: readers see the whole file or none; concurrent writers write equal bytes.
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return StoredBlob(sha256=sha256, size=len(data), path=str(target))

    async def get(self, sha256: str) -> bytes:
        """The stored bytes."""
        check_sha256(sha256)
        return await asyncio.to_thread(self._get, sha256)

    def _get(self, sha256: str) -> bytes:
        found = self.path(sha256)
        if found is None:
            raise BlobNotFound(f"The image store has no image {sha256}.")
        return found.read_bytes()

    async def delete(self, sha256: str) -> bool:
        """Remove every file holding ``sha256``."""
        check_sha256(sha256)
        return await asyncio.to_thread(self._delete, sha256)

    def _delete(self, sha256: str) -> bool:
        found = self._files(sha256)
        for path in found:
            path.unlink(missing_ok=True)
        return bool(found)

    async def exists(self, sha256: str) -> bool:
        """Whether a file holds ``sha256``."""
        check_sha256(sha256)
        return await asyncio.to_thread(self.path, sha256) is not None

    async def close(self) -> None:
        """Nothing to release (files are closed after each call)."""

    def path(self, sha256: str) -> Path | None:
        """The file holding ``sha256`` (any suffix), or None (blocking: call off the loop)."""
        check_sha256(sha256)
        matches = self._files(sha256)
        return matches[0] if matches else None

    def _files(self, sha256: str) -> list[Path]:
        """Every file holding ``sha256`` (any suffix; temporary dot-files excluded), sorted."""
        directory = self._dir(sha256)
        if not directory.is_dir():
            return []
        return sorted(p for p in directory.glob(f"{sha256}.*") if not p.name.startswith("."))
