"""User settings, bans, banned words, and the content-addressed image store."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from storage.contract import SpeedMode, UserSettings, VariationStrength
from storage.errors import BlobNotFound, InvalidValue, UserNotFound
from storage.images import FileImageStore, ImageStore
from storage.users import Users

ALICE = 1001


async def test_settings_default_then_round_trip(users: Users) -> None:
    assert await users.get_settings(ALICE) == UserSettings()
    wanted = UserSettings(
        aspect="3:2",
        variation=VariationStrength.SUBTLE,
        stylize=250,
        raw=True,
        mode=SpeedMode.RELAX,
    )
    assert await users.update_settings(ALICE, wanted) == wanted
    assert await users.get_settings(ALICE) == wanted


async def test_ban_and_unban(users: Users) -> None:
    assert not await users.is_banned(ALICE)
    await users.ban(ALICE)
    assert await users.is_banned(ALICE)
    await users.unban(ALICE)
    assert not await users.is_banned(ALICE)
    with pytest.raises(UserNotFound, match="User 42 has never used the bot"):
        await users.unban(42)


async def test_banned_words_are_normalized(users: Users) -> None:
    assert await users.add_banned_word("  Gore ")
    assert not await users.add_banned_word("GORE")
    assert await users.add_banned_word("bad   thing")
    assert await users.banned_words() == ["bad thing", "gore"]
    assert await users.remove_banned_word("Gore")
    assert not await users.remove_banned_word("gore")
    with pytest.raises(InvalidValue, match="cannot be empty"):
        await users.add_banned_word("   ")
    assert await users.banned_words() == ["bad thing"]


async def test_image_store_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = FileImageStore(tmp_path / "images")
    assert isinstance(store, ImageStore)
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
    digest = hashlib.sha256(data).hexdigest()
    blobs = await asyncio.gather(*(store.put(data) for _ in range(8)))
    assert {blob.sha256 for blob in blobs} == {digest} and blobs[0].size == len(data)
    expected = tmp_path / "images" / digest[:2] / digest[2:4] / f"{digest}.png"
    assert blobs[0].path == str(expected) and expected.read_bytes() == data
    assert store.path(digest) == expected
    assert await store.get(digest) == data
    assert [p.name for p in expected.parent.iterdir()] == [expected.name]  # no temp files left

    jpeg = await store.put(b"\xff\xd8 not really a jpeg", suffix=".jpg")
    assert (
        jpeg.path.endswith(".jpg") and await store.get(jpeg.sha256) == b"\xff\xd8 not really a jpeg"
    )


async def test_image_store_refuses_bad_input(image_store: FileImageStore) -> None:
    missing = "0" * 64
    with pytest.raises(BlobNotFound, match=f"no image {missing}"):
        await image_store.get(missing)
    assert image_store.path(missing) is None
    with pytest.raises(InvalidValue, match="64 lowercase hex digits"):
        await image_store.get("../../etc/passwd")
    with pytest.raises(InvalidValue, match="suffix"):
        await image_store.put(b"x", suffix="/../x")
