"""The S3 image store against a real S3 protocol server on 127.0.0.1 (moto, authenticated)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator

import pytest

from imagine.settings import Settings
from storage.errors import BlobNotFound, ImageStoreError
from storage.images import ImageStore
from storage.s3 import S3ImageStore, parse_location
from storage.stores import ManagedImageStore, open_image_store
from tests.s3server import S3Server
from tests.storage.faults import FaultyProxy


@pytest.fixture
async def store(s3_environ: dict[str, str]) -> AsyncIterator[S3ImageStore]:
    """The store the settings name, opened through the one factory every process uses."""
    opened = await open_image_store(Settings.load(s3_environ).image_store_config)
    assert isinstance(opened, S3ImageStore)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def proxy(s3_server: S3Server) -> AsyncIterator[FaultyProxy]:
    """A fault-injecting proxy in front of the S3 server."""
    faulty = FaultyProxy(s3_server.endpoint_url)
    await faulty.start()
    try:
        yield faulty
    finally:
        await faulty.stop()


def through(proxy: FaultyProxy, server: S3Server, bucket: str, **options: float) -> S3ImageStore:
    return S3ImageStore(
        parse_location(f"s3://{bucket}/images"),
        endpoint_url=proxy.url,
        region=server.region,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        **options,  # type: ignore[arg-type]
    )


async def test_put_get_exists_round_trip_under_content_addressed_keys(
    store: S3ImageStore, s3_server: S3Server, s3_bucket: str
) -> None:
    assert isinstance(store, ImageStore) and isinstance(store, ManagedImageStore)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64
    digest = hashlib.sha256(png).hexdigest()
    blob = await store.put(png)
    assert (blob.sha256, blob.size) == (digest, len(png))
    key = f"images/{digest[:2]}/{digest[2:4]}/{digest}.png"
    assert blob.path == f"s3://{s3_bucket}/{key}"
    assert s3_server.keys(s3_bucket) == [key]
    assert await store.get(digest) == png
    assert await store.exists(digest)
    assert store.path(digest) is None  # no local file

    # The same bytes again: the same key, still one object.
    assert (await store.put(png)).sha256 == digest
    assert s3_server.keys(s3_bucket) == [key]

    # An input image keeps its own suffix and is found by its hash alone.
    jpeg = b"\xff\xd8\xff" + b"jpeg body" * 100
    jpeg_digest = (await store.put(jpeg, ".jpg")).sha256
    assert f"images/{jpeg_digest[:2]}/{jpeg_digest[2:4]}/{jpeg_digest}.jpg" in s3_server.keys(
        s3_bucket
    )
    assert await store.get(jpeg_digest) == jpeg
    assert await store.exists(jpeg_digest)

    absent = "0" * 64
    assert not await store.exists(absent)
    with pytest.raises(BlobNotFound, match=absent):
        await store.get(absent)

    # Deleting removes the object whatever its suffix, and only that one.
    assert await store.delete(jpeg_digest)
    assert not await store.exists(jpeg_digest)
    assert s3_server.keys(s3_bucket) == [key]
    assert not await store.delete(absent)


async def test_bad_hash_and_suffix_are_refused_before_any_request(store: S3ImageStore) -> None:
    from storage.errors import InvalidValue

    with pytest.raises(InvalidValue, match="64 lowercase hex digits"):
        await store.get("../../etc/passwd")
    with pytest.raises(InvalidValue, match="suffix"):
        await store.put(b"x", "png")


async def test_an_object_changed_outside_imagine_is_reported_not_returned(
    store: S3ImageStore, s3_server: S3Server, s3_bucket: str
) -> None:
    blob = await store.put(b"the real image")
    key = blob.path.removeprefix(f"s3://{s3_bucket}/")
    s3_server.client().put_object(Bucket=s3_bucket, Key=key, Body=b"something else")
    with pytest.raises(ImageStoreError, match="does not hold those bytes"):
        await store.get(blob.sha256)


async def test_missing_bucket_is_one_clear_line(s3_server: S3Server) -> None:
    environ = s3_server.environ("no-such-bucket-here")
    with pytest.raises(ImageStoreError) as failure:
        await open_image_store(Settings.load(environ).image_store_config)
    message = str(failure.value)
    assert "\n" not in message
    assert message == (
        f"image store s3://no-such-bucket-here at {s3_server.endpoint_url}: the bucket "
        "'no-such-bucket-here' does not exist; create it, or fix IMAGINE_IMAGE_STORE / "
        "IMAGINE_S3_ENDPOINT_URL"
    )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000", "does not accept the access key"),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret", "the secret key does not match"),
    ],
)
async def test_bad_credentials_are_one_clear_line(
    s3_environ: dict[str, str], variable: str, value: str, expected: str
) -> None:
    settings = Settings.load({**s3_environ, variable: value})
    with pytest.raises(ImageStoreError) as failure:
        await open_image_store(settings.image_store_config)
    message = str(failure.value)
    assert "\n" not in message and expected in message
    assert variable in message  # says which variable to fix
    assert value not in message  # never echoes a credential


async def test_server_errors_are_retried_with_backoff(
    proxy: FaultyProxy, s3_server: S3Server, s3_bucket: str
) -> None:
    store = through(proxy, s3_server, s3_bucket)
    try:
        proxy.fail, proxy.status = 2, 503
        blob = await store.put(b"survives two 503s")
        assert [seen.answered for seen in proxy.requests("PUT")] == [503, 503, 200]
        proxy.fail, proxy.status = 2, 500
        assert await store.get(blob.sha256) == b"survives two 503s"
        assert [seen.answered for seen in proxy.requests("GET")] == [500, 500, 200]
    finally:
        await store.close()


async def test_a_server_that_keeps_failing_is_one_clear_error_and_stores_nothing(
    proxy: FaultyProxy, s3_server: S3Server, s3_bucket: str
) -> None:
    store = through(proxy, s3_server, s3_bucket, max_attempts=3)
    try:
        proxy.fail = 3
        with pytest.raises(ImageStoreError) as failure:
            await store.put(b"never stored")
        assert len(proxy.requests("PUT")) == 3
        assert "ServiceUnavailable" in str(failure.value) and "\n" not in str(failure.value)
        assert s3_server.keys(s3_bucket) == []
    finally:
        await store.close()


async def test_a_stalled_request_times_out_and_is_retried(
    proxy: FaultyProxy, s3_server: S3Server, s3_bucket: str
) -> None:
    store = through(proxy, s3_server, s3_bucket, read_timeout=0.5)
    try:
        proxy.stall, proxy.stall_seconds = 1, 2.0
        blob = await store.put(b"slow server")
        first, retry = proxy.requests("PUT")
        assert (first.answered, retry.answered) == (0, 200)  # the client gave up on the first
        assert await store.get(blob.sha256) == b"slow server"
    finally:
        await store.close()


async def test_a_body_cut_off_mid_read_is_fetched_again(
    proxy: FaultyProxy, s3_server: S3Server, s3_bucket: str
) -> None:
    store = through(proxy, s3_server, s3_bucket)
    data = bytes(range(256)) * 2048
    try:
        blob = await store.put(data)
        proxy.cut_bodies = 2
        assert await store.get(blob.sha256) == data
        assert [seen.answered for seen in proxy.requests("GET")] == [200, 200, 200]
    finally:
        await store.close()


async def test_each_put_is_one_request_carrying_the_body_md5(
    proxy: FaultyProxy, s3_server: S3Server, s3_bucket: str
) -> None:
    store = through(proxy, s3_server, s3_bucket)
    data = bytes(range(256)) * 4096  # 1 MiB
    try:
        await store.put(data)
    finally:
        await store.close()
    (put,) = proxy.requests("PUT")
    # The server checks the body against this (S3 refuses a mismatch with BadDigest), so a
    # body damaged in transit is never stored; one PUT means no partial object is ever visible.
    headers = {k.lower(): v for k, v in put.headers.items()}
    assert base64.b64decode(headers["content-md5"]) == put.body_md5
    assert put.body_md5 == hashlib.md5(data, usedforsecurity=False).digest()
    assert "x-amz-copy-source" not in headers and "uploads" not in put.path
    # The signature covers that header, so the MD5 cannot be swapped along with the body.
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "content-md5" in signed
