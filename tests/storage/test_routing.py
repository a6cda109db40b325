"""Model-aware routing on SQLite and PostgreSQL: a worker claims only jobs it has everything for,
each user's oldest such job first; a job no live worker serves waits and says why."""

from __future__ import annotations

from storage.contract import Control, ControlKind, GenerationRequest, JobKind, JobSpec, SpeedMode
from storage.queue import JobQueue
from storage.quotas import Quotas
from storage.routing import NO_WORKER, needs, serves, waiting_reason
from tests.plugins.database import FakeClock

ALICE, BOB = 2001, 2002

NIJI = {"models": ["default", "niji"], "loras": {"ink": {}}, "profiles": {}}
TURBO = {"models": ["default"], "profiles": {"turbo": {}}, "controlnets": ["canny"], "loras": {}}
NIJI_HOST, TURBO_HOST = serves(NIJI), serves(TURBO)


def _spec(**fields: object) -> JobSpec:
    request = GenerationRequest(prompt=str(fields.pop("prompt", "a harbour")), **fields)  # type: ignore[arg-type]
    return JobSpec(kind=JobKind.IMAGINE, request=request, cost=4)


def test_needs_and_serves_are_tokens() -> None:
    request = GenerationRequest(
        prompt="x",
        model="niji",
        mode=SpeedMode.TURBO,
        loras=(("ink", 0.8),),
        control=Control(ControlKind.CANNY),
    )
    assert needs(request) == ["control:canny", "lora:ink", "model:niji", "profile:turbo"]
    # An upscale refines with the configured model, never a fast profile.
    assert needs(request, JobKind.UPSCALE) == ["control:canny", "lora:ink", "model:niji"]
    assert needs(GenerationRequest(prompt="x")) == []
    assert NIJI_HOST == ["lora:ink", "model:default", "model:niji"]


def test_waiting_reason_names_what_no_live_worker_serves() -> None:
    assert waiting_reason(["model:niji"], [NIJI_HOST]) is None
    assert waiting_reason(["model:niji"], [TURBO_HOST]) == (
        "waiting for a worker that serves model niji"
    )
    # Each part is served, but by different workers: the combination is named.
    assert waiting_reason(["model:niji", "profile:turbo"], [NIJI_HOST, TURBO_HOST]) == (
        "waiting for a worker that serves model niji and profile turbo"
    )
    assert waiting_reason(["lora:ink"], []) == "waiting for a worker that serves style ink"
    # A job that needs nothing special waits only while no worker is live at all.
    assert waiting_reason([], [TURBO_HOST]) is None
    assert waiting_reason([], [[]]) is None  # a worker that registered no capabilities
    assert waiting_reason([], []) == NO_WORKER == "waiting for a worker: none is running right now"


async def test_two_workers_each_claim_only_their_jobs(queue: JobQueue, quotas: Quotas) -> None:
    await quotas.set_caps(ALICE, max_concurrent=10, max_queued=20)
    await quotas.set_caps(BOB, max_concurrent=10, max_queued=20)
    # Alice's oldest jobs need the niji host; her newest plain one either host can paint.
    alice = await queue.enqueue(
        ALICE,
        [
            _spec(model="niji"),
            _spec(loras=(("ink", 1.0),)),
            _spec(mode=SpeedMode.TURBO),
            _spec(),
        ],
        interaction_id=1,
    )
    bob = await queue.enqueue(
        BOB,
        [_spec(mode=SpeedMode.TURBO, control=Control(ControlKind.CANNY)), _spec(model="v7")],
        interaction_id=2,
    )
    assert alice[0].id < bob[0].id

    # The turbo host skips Alice's niji and ink jobs and takes the rest: turbo jobs first (the
    # faster lane), then her plain one.
    turbo_claims = await queue.claim("turbo-host", limit=10, capabilities=TURBO)
    assert [job.id for job in turbo_claims] == [alice[2].id, bob[0].id, alice[3].id]
    niji_claims = await queue.claim("niji-host", limit=10, capabilities=NIJI)
    assert [job.id for job in niji_claims] == [alice[0].id, alice[1].id]

    # Bob's --model v7 job: no worker serves it, so it stays queued for anyone.
    assert await queue.claim("turbo-host", limit=10, capabilities=TURBO) == []
    assert await queue.claim("niji-host", limit=10, capabilities=NIJI) == []
    left = await queue.get(bob[1].id)
    assert left.status.value == "queued"
    # A claim without a capability set (an older worker) takes whatever is next.
    legacy = await queue.claim("legacy", limit=10)
    assert [job.id for job in legacy] == [bob[1].id]


async def test_each_users_oldest_eligible_job_first(queue: JobQueue, quotas: Quotas) -> None:
    await quotas.set_caps(ALICE, max_concurrent=1, max_queued=20)
    first, second = await queue.enqueue(ALICE, [_spec(model="niji"), _spec()], interaction_id=3)
    # With a running cap of one, Alice's next eligible job on the turbo host is her plain one:
    # the niji job she queued first does not block it.
    claimed = await queue.claim("turbo-host", limit=1, capabilities=TURBO)
    assert [job.id for job in claimed] == [second.id]
    assert await queue.claim("niji-host", limit=1, capabilities=NIJI) == []  # at her cap
    await queue.release(second.id, "turbo-host")
    claimed = await queue.claim("niji-host", limit=1, capabilities=NIJI)
    assert [job.id for job in claimed] == [first.id]


async def test_waiting_says_why_a_job_stays_queued(
    queue: JobQueue, quotas: Quotas, clock: FakeClock
) -> None:
    niji, plain = await queue.enqueue(ALICE, [_spec(model="niji"), _spec()], interaction_id=4)
    assert await queue.waiting() == {
        niji.id: "waiting for a worker that serves model niji",
        plain.id: NO_WORKER,
    }
    await queue.register_worker("turbo-host", "a", "tiny", {"models": ["default"]})
    assert await queue.waiting() == {niji.id: "waiting for a worker that serves model niji"}
    await queue.register_worker("niji-host", "b", "tiny", {"models": ["default", "niji"]})
    assert await queue.waiting() == {}
    # Unseen for longer than a lease, the niji host no longer counts.
    clock.advance(queue.lease.total_seconds() + 1)
    await queue.register_worker("turbo-host", "a", "tiny", {"models": ["default"]})
    assert await queue.waiting() == {niji.id: "waiting for a worker that serves model niji"}


async def test_every_queued_job_waits_while_no_worker_is_live(
    queue: JobQueue, quotas: Quotas, clock: FakeClock
) -> None:
    await quotas.set_caps(ALICE, max_concurrent=10, max_queued=20)
    plain, turbo, niji = await queue.enqueue(
        ALICE, [_spec(), _spec(mode=SpeedMode.TURBO), _spec(model="niji")], interaction_id=5
    )
    await queue.register_worker("turbo-host", "a", "tiny", TURBO)
    assert await queue.waiting() == {niji.id: "waiting for a worker that serves model niji"}
    # Drained, stopped or crashed: unseen for longer than a lease, the host no longer counts,
    # and even a job any worker could paint says why it waits.
    clock.advance(queue.lease.total_seconds() + 1)
    assert await queue.waiting() == {
        plain.id: NO_WORKER,
        turbo.id: "waiting for a worker that serves profile turbo",
        niji.id: "waiting for a worker that serves model niji",
    }
    # Seen again, it serves the plain and turbo jobs once more.
    await queue.register_worker("turbo-host", "a", "tiny", TURBO)
    assert await queue.waiting() == {niji.id: "waiting for a worker that serves model niji"}
    # Asked about some jobs (a user's own, however far back), it says why those wait.
    assert await queue.waiting(limit=1) == {}
    assert await queue.waiting(limit=1, job_ids=[niji.id, plain.id]) == {
        niji.id: "waiting for a worker that serves model niji"
    }
