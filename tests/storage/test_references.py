"""Style and character references on the job row: stored, routed to an adapter, kept as blobs."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from bot.prompt import parse
from storage.blobs import unreferenced
from storage.contract import JobKind, JobSpec, StoredImage
from storage.db import Database
from storage.images import FileImageStore
from storage.queue import JobQueue
from storage.retention import FileBlobs, purge
from storage.routing import NO_WORKER, needs, serves
from tests.plugins.database import FakeClock

ALICE = 3001
ADAPTER = {"models": ["default"], "ip_adapter": True}
PLAIN = {"models": ["default"], "ip_adapter": False}


def _spec(prompt: str, style: tuple[str, ...] = (), character: tuple[str, ...] = ()) -> JobSpec:
    [request] = parse(prompt)
    return JobSpec(JobKind.IMAGINE, request, cost=4, style_images=style, character_images=character)


def test_references_need_an_adapter_image_prompts_do_not() -> None:
    [styled] = parse("a fox --sref https://example.com/s.png")
    [image_prompt] = parse("https://example.com/a.png a fox")
    assert needs(styled) == ["ip_adapter"]
    assert needs(styled, JobKind.REROLL) == needs(styled, JobKind.VARIATION) == ["ip_adapter"]
    # An upscale or an edit refines one image: no references there.
    assert needs(styled, JobKind.UPSCALE) == needs(styled, JobKind.OUTPAINT) == []
    assert needs(image_prompt) == []
    assert serves(ADAPTER) == ["ip_adapter", "model:default"]
    assert serves(PLAIN) == ["model:default"]


async def test_references_are_stored_with_the_job_and_only_an_adapter_host_claims_it(
    queue: JobQueue,
) -> None:
    character = "b" * 64
    [styled, plain] = await queue.enqueue(
        ALICE,
        [
            _spec(
                "a fox --cref https://example.com/c.png --cw 40",
                character=(character,),
            ),
            _spec("a fox"),
        ],
        interaction_id=11,
    )
    stored = await queue.get(styled.id)
    assert stored.character_images == (character,) and stored.style_images == ()
    assert stored.request.character_refs == ("https://example.com/c.png",)
    assert stored.request.character_weight == 40
    assert (await queue.get(plain.id)).character_images == ()
    assert await queue.waiting() == {
        styled.id: "waiting for a worker that serves an IP-Adapter",
        plain.id: NO_WORKER,  # no worker has checked in yet
    }
    # The host without an adapter takes only the plain job; the styled one waits for an adapter.
    assert [job.id for job in await queue.claim("plain", limit=5, capabilities=PLAIN)] == [plain.id]
    claimed = await queue.claim("adapter", limit=5, capabilities=ADAPTER)
    assert [job.id for job in claimed] == [styled.id]
    assert claimed[0].character_images == (character,)


async def test_reference_blobs_stay_while_a_kept_job_names_them(
    db: Database, queue: JobQueue, image_store: FileImageStore, clock: FakeClock
) -> None:
    reference = await image_store.put(b"a style reference")
    loose = await image_store.put(b"nobody's image")
    clock.current -= timedelta(days=40)
    [old] = await queue.enqueue(
        ALICE,
        [_spec("a fox --sref https://example.com/s.png", style=(reference.sha256,))],
        interaction_id=12,
    )
    assert await unreferenced(db, [reference.sha256, loose.sha256]) == [loose.sha256]
    [claimed] = await queue.claim("w", capabilities=ADAPTER)
    result = await image_store.put(b"the painted grid")
    stored = [StoredImage(0, result.sha256, 8, 8, 1, result.size, result.path)]
    await queue.finish(claimed.id, "w", stored, gpu_seconds=0.1)
    clock.advance(40 * 86400)
    [new] = await queue.enqueue(
        ALICE,
        [_spec("a cat --sref https://example.com/s.png", style=(reference.sha256,))],
        interaction_id=13,
    )
    for blob in (reference, result):
        path = image_store.path(blob.sha256)
        assert path is not None
        then = time.time() - 40 * 86400
        os.utime(path, (then, then))
    blobs = FileBlobs(image_store.root)
    report = await purge(db, blobs, now=clock(), older_than=timedelta(days=30))
    assert report.jobs == 1 and (await queue.get(old.id)).images_purged_at is not None
    # The newer job still paints with the reference: its blob stays.
    assert image_store.path(reference.sha256) is not None
    assert image_store.path(result.sha256) is None
    assert (await queue.get(new.id)).style_images == (reference.sha256,)
