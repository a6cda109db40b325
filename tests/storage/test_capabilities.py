"""Workers register what they serve; the bot reads the union of the live ones."""

from __future__ import annotations

from storage.capabilities import merge, read_offered
from storage.queue import JobQueue
from tests.plugins.database import FakeClock

TURBO = {"steps": 4, "guidance": 0.0, "size": None}


async def test_registered_capabilities_merge_over_live_workers(
    queue: JobQueue, clock: FakeClock
) -> None:
    await queue.register_worker(
        "w1",
        "gpu-1",
        "sdxl",
        {"profiles": {"turbo": TURBO}, "loras": {"ink": {"trigger": "ink", "weight": 0.8}}},
    )
    await queue.register_worker(
        "w2",
        "gpu-2",
        "sdxl",
        {"loras": {"pastel": {"trigger": "", "weight": 1.0}}, "controlnets": ["canny"]},
    )
    await queue.register_worker("w3", "gpu-3", "sdxl")
    workers = (await queue.stats()).workers
    assert [w.capabilities for w in workers][2] is None
    offered = merge(workers, clock())
    assert dict(offered.profiles) == {"turbo": TURBO}
    assert offered.styles() == [("ink", "ink", 0.8), ("pastel", "", 1.0)]
    assert offered.controlnets == frozenset({"canny"})
    assert offered.unknown_loras(["pastel", "watercolor", "ink"]) == ["watercolor"]
    assert (offered.ip_adapter, offered.translation) == (False, False)

    assert await read_offered(queue.db, clock()) == offered

    # A worker that stopped refreshing drops out; one that re-registers updates what it serves.
    clock.advance(3601)
    await queue.register_worker("w2", "gpu-2", "sdxl", {"loras": {}, "translation": True})
    offered = await read_offered(queue.db, clock())
    assert (dict(offered.profiles), dict(offered.loras), offered.translation) == ({}, {}, True)
