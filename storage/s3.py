"""Images in an S3-compatible object store (AWS S3, MinIO, Cloudflare R2, Backblaze B2).

Keys are the file store's layout under the prefix: ``PREFIX/ab/cd/<sha256><suffix>``. Every
object is written by one PUT carrying its Content-MD5, so the server stores the whole body or
nothing (S3 never shows a partial object), and every read is checked against the SHA-256 the
key names. Requests that fail with a 5xx, a throttle, a dropped connection or a timeout are
retried with exponential backoff (botocore's standard retry mode); errors that retrying cannot
fix (no such bucket, refused credentials) become one ``ImageStoreError`` sentence. Transfers
run on a private event loop thread, so moving megabytes never stalls the caller's loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage._ioloop import IoLoop
from storage.errors import BlobNotFound, ImageStoreError, InvalidValue
from storage.images import StoredBlob, check_sha256, check_suffix

# Bucket names as S3 allows them (R2, B2 and MinIO follow the same rules).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_PART = re.compile(r"[A-Za-z0-9!_.*'()-]+")
_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
DEFAULT_ATTEMPTS = 5
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix (``""`` or ending in ``/``)."""

    bucket: str
    prefix: str = ""

    @property
    def url(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, sha256: str, suffix: str) -> str:
        """The object key of a blob, as the file store lays out files."""
        return f"{self.prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}{suffix}"


def parse_location(text: str) -> S3Location:
    """``s3://BUCKET[/PREFIX]`` as a location, or InvalidValue saying what is wrong."""
    if not text.startswith("s3://"):
        raise InvalidValue(f"an object store location looks like s3://BUCKET/PREFIX; got {text!r}")
    bucket, _, prefix = text[len("s3://") :].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidValue(
            f"bucket name {bucket!r} in {text!r} must be 3-63 lowercase letters, digits, dots "
            "or hyphens, starting and ending with a letter or digit"
        )
    parts = [part for part in prefix.split("/") if part]
    for part in parts:
        if not _PREFIX_PART.fullmatch(part) or part in (".", ".."):
            raise InvalidValue(
                f"prefix segment {part!r} in {text!r} may use letters, digits and !_.*'()- only"
            )
    return S3Location(bucket, "".join(f"{part}/" for part in parts))


@dataclass(frozen=True)
class S3Object:
    """One object under the store's prefix, as a listing shows it."""

    key: str
    size: int
    modified: float  # POSIX time of its last write


class S3ImageStore:
    """Blobs as objects in one bucket; the client is opened on first use, closed by ``close``.

    The public methods may be awaited from any event loop; the client lives on ``self._io``.
    """

    def __init__(
        self,
        location: S3Location,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        max_attempts: int = DEFAULT_ATTEMPTS,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        self.location = location
        self.endpoint_url = endpoint_url
        self._attempts = max(1, max_attempts)
        self._client_args: dict[str, Any] = {
            "region_name": region,
            "endpoint_url": endpoint_url,
            # None lets botocore's own chain find credentials (profile, instance role).
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "aws_session_token": session_token,
        }
        self._config = {
            "retries": {"total_max_attempts": max_attempts, "mode": "standard"},
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "s3": {
                # Path-style URLs: MinIO and local servers have no per-bucket host names.
                "addressing_style": "path" if endpoint_url else "auto",
                # The signature covers the Content-MD5 header, which the server checks against
                # the body; hashing megabytes once more for the signature would run on the
                # event loop.
                "payload_signing_enabled": False,
            },
            # The Content-MD5 below is the integrity check every S3-compatible store accepts;
            # botocore's newer default checksums are refused by some of them.
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
        self._client: Any = None
        self._stack = contextlib.AsyncExitStack()
        self._opening = asyncio.Lock()
        self._io = IoLoop("imagine-s3")

    @property
    def where(self) -> str:
        """The location and endpoint, for messages."""
        return f"{self.location.url} at {self.endpoint_url or 'AWS S3'}"

    async def _s3(self) -> Any:
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    from aiobotocore.config import AioConfig
                    from aiobotocore.session import get_session
                    from botocore.handlers import convert_body_to_file_like_object

                    creator = get_session().create_client(
                        "s3", config=AioConfig(**self._config), **self._client_args
                    )
                    client = await self._stack.enter_async_context(creator)
                    # botocore wraps a bytes body in a BytesIO, which aiohttp then copies whole
                    # (to learn its size) and reads back in chunks: two more copies of every
                    # image on its way to the socket. Bytes are sent as they are.
                    client.meta.events.unregister(
                        "before-parameter-build.s3.PutObject", convert_body_to_file_like_object
                    )
                    self._client = client
        return self._client

    async def close(self) -> None:
        """Close the client's connections and the transfer thread."""
        await self._io.run(self._close())
        await self._io.stop()

    async def _close(self) -> None:
        self._client = None
        await self._stack.aclose()

    async def check(self) -> None:
        """List one key under the prefix: ImageStoreError unless the bucket answers to us."""
        prefix = self.location.prefix
        await self._io.run(self._call("list_objects_v2", MaxKeys=1, Prefix=prefix))

    async def put(self, data: bytes, suffix: str = ".png") -> StoredBlob:
        """Store ``data`` under its SHA-256 in one PUT (the same bytes again are harmless)."""
        check_suffix(suffix)
        return await self._io.run(self._put(bytes(data), suffix))

    async def _put(self, data: bytes, suffix: str) -> StoredBlob:
        sha256, md5 = await asyncio.to_thread(_digests, data)
        key = self.location.key(sha256, suffix)
        await self._call(
            "put_object",
            Key=key,
            Body=data,
            ContentMD5=md5,
            ContentType=_TYPES.get(suffix, "application/octet-stream"),
        )
        return StoredBlob(sha256=sha256, size=len(data), path=f"s3://{self.location.bucket}/{key}")

    async def get(self, sha256: str) -> bytes:
        """The stored bytes, checked against their hash (BlobNotFound if none)."""
        check_sha256(sha256)
        return await self._io.run(self._get(sha256))

    async def _get(self, sha256: str) -> bytes:
        data = await self._read(self.location.key(sha256, ".png"))
        if data is None:
            key = await self._find(sha256)
            data = None if key is None else await self._read(key)
        if data is None:
            raise BlobNotFound(f"The image store has no image {sha256}.")
        if await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest()) != sha256:
            raise ImageStoreError(
                f"image store {self.where}: the object for image {sha256} does not hold "
                "those bytes (it was changed or damaged outside imagine)"
            )
        return data

    async def exists(self, sha256: str) -> bool:
        """Whether an object holds ``sha256`` (any suffix)."""
        check_sha256(sha256)
        return await self._io.run(self._exists(sha256))

    async def _exists(self, sha256: str) -> bool:
        try:
            await self._call("head_object", Key=self.location.key(sha256, ".png"))
            return True
        except BlobNotFound:
            return await self._find(sha256) is not None

    async def delete(self, sha256: str) -> bool:
        """Remove every object holding ``sha256``; whether there was one."""
        check_sha256(sha256)
        return await self._io.run(self._delete(sha256))

    async def _delete(self, sha256: str) -> bool:
        keys = await self._keys(sha256)
        for key in keys:
            await self._call("delete_object", Key=key)
        return bool(keys)

    async def objects(
        self, after: str | None = None, *, limit: int = 1000
    ) -> tuple[list[S3Object], str | None]:
        """One page of at most ``limit`` objects under the prefix, and the token of the next
        page (None at the end); ``after`` is the token a previous page returned."""
        return await self._io.run(self._objects(after, limit))

    async def _objects(self, after: str | None, limit: int) -> tuple[list[S3Object], str | None]:
        params: dict[str, Any] = {"Prefix": self.location.prefix, "MaxKeys": max(1, limit)}
        if after is not None:
            params["ContinuationToken"] = after
        page = await self._call("list_objects_v2", **params)
        found = [
            S3Object(str(item["Key"]), int(item["Size"]), item["LastModified"].timestamp())
            for item in page.get("Contents", ())
        ]
        following = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        return found, None if following is None else str(following)

    async def delete_key(self, key: str) -> None:
        """Remove the object ``key`` (nothing happens when there is none)."""
        if not key.startswith(self.location.prefix):
            raise InvalidValue(f"key {key!r} is outside the store's prefix {self.location.url}")
        await self._io.run(self._call("delete_object", Key=key))

    def path(self, sha256: str) -> Path | None:
        """None: objects have no local file."""
        check_sha256(sha256)
        return None

    async def _find(self, sha256: str) -> str | None:
        """The key of a blob stored with a suffix other than ``.png``."""
        keys = await self._keys(sha256)
        return keys[0] if keys else None

    async def _keys(self, sha256: str) -> list[str]:
        """Every key holding ``sha256`` (any suffix), sorted."""
        listing = await self._call(
            "list_objects_v2", Prefix=self.location.key(sha256, "."), MaxKeys=10
        )
        return sorted(str(item["Key"]) for item in listing.get("Contents", ()))

    async def _read(self, key: str) -> bytes | None:
        """The object's bytes, or None; a body cut off on the way is fetched again."""
        import aiohttp
        from botocore.exceptions import BotoCoreError

        attempt = 1
        while True:
            try:
                response = await self._call("get_object", Key=key)
            except BlobNotFound:
                return None
            try:
                async with response["Body"] as body:
                    data: bytes = await body.read()
                return data
            except (BotoCoreError, aiohttp.ClientError, TimeoutError) as exc:
                # botocore retries a request until its headers arrive, not a body read after.
                if attempt >= self._attempts:
                    reason = self._explain(type(exc).__name__, str(exc))
                    raise ImageStoreError(reason) from None
                attempt += 1
                log.warning("%s: reading %s failed (%s); again", self.where, key, exc)

    async def _call(self, operation: str, **params: Any) -> Any:
        """One S3 operation on the bucket; errors as BlobNotFound or ImageStoreError."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = await self._s3()
        try:
            return await getattr(client, operation)(Bucket=self.location.bucket, **params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
            code = str(error.get("Code") or status)
            if code in _MISSING and operation != "list_objects_v2":
                raise BlobNotFound(f"{self.where} has no object {params.get('Key')}") from None
            raise ImageStoreError(self._explain(code, str(error.get("Message") or ""))) from None
        except BotoCoreError as exc:
            raise ImageStoreError(self._explain(type(exc).__name__, str(exc))) from None

    def _explain(self, code: str, message: str) -> str:
        where = self.where
        bucket = self.location.bucket
        if code in ("NoSuchBucket", "404"):
            return (
                f"image store {where}: the bucket {bucket!r} does not exist; create it, or fix "
                "IMAGINE_IMAGE_STORE / IMAGINE_S3_ENDPOINT_URL"
            )
        if code in ("InvalidAccessKeyId", "InvalidToken", "ExpiredToken"):
            return (
                f"image store {where}: the object store does not accept the access key "
                f"({code}); check AWS_ACCESS_KEY_ID (and AWS_SESSION_TOKEN)"
            )
        if code == "SignatureDoesNotMatch":
            return (
                f"image store {where}: the secret key does not match the access key; "
                "check AWS_SECRET_ACCESS_KEY"
            )
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return (
                f"image store {where}: access denied to bucket {bucket!r}; the credentials "
                "need s3:ListBucket, s3:GetObject and s3:PutObject on it (and s3:DeleteObject "
                "for retention)"
            )
        if code == "NoCredentialsError":
            return (
                f"image store {where}: no credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY"
            )
        if code in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
            return f"image store {where}: cannot reach the object store ({code})"
        detail = " ".join(f"{code}: {message}".split())
        return f"image store {where}: {detail}"


def _digests(data: bytes) -> tuple[str, str]:
    """The SHA-256 (hex, the key) and the MD5 (base64, for Content-MD5) of ``data``."""
    md5 = hashlib.md5(data, usedforsecurity=False).digest()
    return hashlib.sha256(data).hexdigest(), base64.b64encode(md5).decode("ascii")
