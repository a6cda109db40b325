"""Single-image posts: one public post per grid image, kept across restarts (both databases)."""

from __future__ import annotations

import pytest

from storage.db import Database
from storage.errors import InvalidValue
from storage.posts import SinglePosts
from storage.queue import JobQueue
from tests.plugins.database import FakeClock
from tests.storage.helpers import spec

ALICE, BOB = 1001, 1002


async def test_a_post_is_found_again_and_the_first_one_stays(
    db: Database, queue: JobQueue, clock: FakeClock
) -> None:
    (job,) = await queue.enqueue(ALICE, [spec()], interaction_id=1)
    posts = SinglePosts(db, clock=clock)
    assert await posts.get(job.id, 2) is None

    first = await posts.record(job.id, 2, guild_id=7, channel_id=8, message_id=900, user_id=ALICE)
    assert (first.job_id, first.index, first.guild_id, first.channel_id) == (job.id, 2, 7, 8)
    assert (first.message_id, first.user_id, first.created_at) == (900, ALICE, clock())

    # Another process posted the same image meanwhile: the earlier post is the one kept.
    clock.advance(5)
    again = await posts.record(job.id, 2, guild_id=7, channel_id=8, message_id=901, user_id=BOB)
    assert again == first
    # A new handle (a restarted bot) finds it; other images of the grid are not posted.
    assert await SinglePosts(db).get(job.id, 2) == first
    assert await posts.get(job.id, 1) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"index": 4}, "image index must be 0 to 3, got 4"),
        ({"index": -1}, "image index must be 0 to 3, got -1"),
        ({"message_id": 0}, "message id must be a positive integer id, got 0"),
        ({"guild_id": -3}, "guild id must be a positive integer id, got -3"),
    ],
)
async def test_bad_posts_are_refused(
    db: Database, queue: JobQueue, fields: dict[str, int], message: str
) -> None:
    (job,) = await queue.enqueue(ALICE, [spec()], interaction_id=1)
    values = {"index": 0, "guild_id": 7, "channel_id": 8, "message_id": 900, "user_id": ALICE}
    values.update(fields)
    index = values.pop("index")
    with pytest.raises(InvalidValue, match=message):
        await SinglePosts(db).record(job.id, index, **values)
    assert await SinglePosts(db).get(job.id, 0) is None
