"""Small builders shared by the storage tests."""

from __future__ import annotations

import hashlib

from storage.contract import GenerationRequest, JobKind, JobSpec, SpeedMode, StoredImage


def spec(
    cost: int = 4,
    *,
    prompt: str = "a lighthouse at dusk",
    mode: SpeedMode = SpeedMode.FAST,
    seed: int | None = None,
    kind: JobKind = JobKind.IMAGINE,
) -> JobSpec:
    """One job spec."""
    return JobSpec(
        kind=kind, request=GenerationRequest(prompt=prompt, seed=seed, mode=mode), cost=cost
    )


def grid_images(job_id: int, seed: int) -> list[StoredImage]:
    """Four images and a grid with made-up but well-formed hashes."""
    out = []
    for index in range(-1, 4):
        digest = hashlib.sha256(f"{job_id}:{index}".encode()).hexdigest()
        out.append(
            StoredImage(
                index=index,
                sha256=digest,
                width=64 if index >= 0 else 128,
                height=64 if index >= 0 else 128,
                seed=seed + max(index, 0),
                size_bytes=1000 + index,
                path=f"images/{digest[:2]}/{digest[2:4]}/{digest}.png",
            )
        )
    return out
