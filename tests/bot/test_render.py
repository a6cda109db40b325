"""Job message text, from plain job data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from bot.render import (
    MAX_CONTENT,
    failure_summary,
    info_content,
    job_content,
    painted_items,
    quota_lines,
    single_image_content,
)
from storage.contract import GenerationRequest, Job, JobKind, JobStatus, SpeedMode


def _job(**fields: object) -> Job:
    values: dict[str, object] = {
        "id": 3,
        "kind": JobKind.IMAGINE,
        "status": JobStatus.QUEUED,
        "user_id": 42,
        "request": GenerationRequest(
            prompt="a red fox",
            segments=(("a red fox", 1.0),),
            aspect="3:2",
            width=1216,
            height=832,
            seed=7,
        ),
        "seed": 7,
        "cost": 4,
    }
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


def test_queued_job_message() -> None:
    assert job_content(_job()) == "**a red fox --ar 3:2 --seed 7** - <@42> (Waiting to start)"


def test_running_and_finished_states() -> None:
    assert job_content(_job(status=JobStatus.RUNNING, progress=45)).endswith("(45%)")
    assert job_content(_job(status=JobStatus.SUCCEEDED)).endswith("<@42> (fast)")
    relax = _job(
        status=JobStatus.SUCCEEDED,
        request=GenerationRequest(prompt="x", seed=1, mode=SpeedMode.RELAX),
        cost=0,
    )
    assert job_content(relax) == "**x --seed 1 --relax** - <@42> (relax)"
    assert job_content(_job(status=JobStatus.CANCELLED)).endswith("(Cancelled, refunded)")


def test_a_translated_prompt_shows_the_original_and_the_english_painted() -> None:
    chinese = GenerationRequest(
        prompt="一只红色的狐狸", segments=(("一只红色的狐狸", 1.0),), seed=3
    )
    rendered = {"translation": {"prompt": "a *red* fox", "segments": [["a *red* fox", 1.0]]}}
    done = _job(status=JobStatus.SUCCEEDED, request=chinese, rendered=rendered)
    assert job_content(done) == (
        "**一只红色的狐狸 --seed 3** - <@42> (fast)\nPainted in English: a \\*red\\* fox"
    )
    running = _job(status=JobStatus.RUNNING, request=chinese, rendered=rendered)
    assert "English" not in job_content(running)
    huge = _job(
        status=JobStatus.SUCCEEDED,
        request=chinese,
        rendered={"translation": {"prompt": "fox " * 600}},
    )
    content = job_content(huge)
    assert len(content) <= 2000 and content.endswith("…")
    assert content.startswith("**一只红色的狐狸 --seed 3** - <@42> (fast)\nPainted in English: fox")


def test_what_painted_a_job_reads_as_rows_and_hides_nothing() -> None:
    weighted = GenerationRequest(
        prompt="狐狸 月亮", segments=(("狐狸", 2.0), ("月亮", 1.0)), negative_prompt="blur", seed=3
    )
    rendered = {
        "profile": "draft",
        "reference": {"role": "image", "scale": 0.5},
        "translation": {
            "prompt": "fox moon",
            "segments": [["fox", 2.0], ["moon", 1.0]],
            "negative_prompt": "blur",
        },
    }
    done = _job(status=JobStatus.SUCCEEDED, request=weighted, rendered=rendered)
    assert painted_items(done) == [
        ("profile", "draft"),
        ("IP-Adapter", "image reference at scale 0.5"),
        ("painted in English", "fox moon"),
        ("English segments", "fox (weight 2) · moon (weight 1)"),
    ]
    # A family's own keys (the Stable Cascade worker's) are shown as stored.
    cascade = {"family": "cascade", "prior_guidance": 4.0, "decoder_steps": 10}
    assert painted_items(_job(status=JobStatus.SUCCEEDED, rendered=cascade)) == [
        ("decoder_steps", "10"),
        ("family", "cascade"),
        ("prior_guidance", "4.0"),
    ]
    assert painted_items(_job()) == []
    both = {"references": [{"role": "style", "scale": 1.5}, {"role": "character", "scale": 0.4}]}
    assert painted_items(_job(status=JobStatus.SUCCEEDED, rendered=both)) == [
        ("IP-Adapter", "style reference at scale 1.5, character reference at scale 0.4")
    ]


def test_failed_job_says_why_and_that_it_was_refunded() -> None:
    failed = _job(
        status=JobStatus.FAILED,
        error="internal error (reference 0a1b2c3d)\nOutOfMemoryError: CUDA out of memory at /opt/x",
    )
    assert job_content(failed).endswith(
        "(Failed: internal error (reference 0a1b2c3d); 4 images refunded)"
    )


INTERNAL = "internal error (reference job 9)"


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (None, "the worker gave no reason"),
        ("  \n ", "the worker gave no reason"),
        ("the worker stopped responding and no attempts are left", None),
        ("internal error (reference 0a1b2c3d)\nRuntimeError: /srv/models/x: bad", None),
        (
            "\n\nmodel 'v9' is not configured on this server; available: default\nUnknownModel: ",
            None,
        ),
        # Raw exceptions (stored some other way) never reach the public message.
        ("RuntimeError: CUDA error: an illegal memory access", INTERNAL),
        (
            "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked",
            INTERNAL,
        ),
        ("OSError: [Errno 28] No space left on device: '/data/images/ab'", INTERNAL),
    ],
)
def test_failure_summary_shows_the_public_line_only(error: str | None, shown: str | None) -> None:
    first_line = (error or "").strip().splitlines()[0] if error and error.strip() else ""
    assert failure_summary(error, 9) == (shown or first_line)


def test_failure_summary_is_one_short_line() -> None:
    assert len(failure_summary("x" * 1000, 1)) == 180


def test_kinds_are_labelled() -> None:
    variation = _job(kind=JobKind.VARIATION, strength=0.85, parent_job_id=1, parent_index=2)
    assert " - Variations (Strong) by <@42> " in job_content(variation)
    upscale = _job(kind=JobKind.UPSCALE, strength=0.2, parent_job_id=1, parent_index=2)
    assert " - Upscaled (Subtle) image #3 by <@42> " in job_content(upscale)
    assert single_image_content(_job(), 1, 99).endswith(" - Image #2 <@99>")


def test_markdown_in_prompts_is_escaped_and_long_prompts_fit() -> None:
    starry = _job(request=GenerationRequest(prompt="**bold** _x_", seed=1))
    assert job_content(starry).startswith(r"**\*\*bold\*\* \_x\_ --seed 1**")
    long = _job(request=GenerationRequest(prompt="word " * 400, seed=1))
    text = job_content(long)
    assert len(text) <= MAX_CONTENT
    assert text.endswith("…** - <@42> (Waiting to start)")


@dataclass
class _Status:
    limit: int = 20
    period: str = "day"
    used: int = 8
    left: int = 12
    running: int = 1
    queued: int = 2
    lifetime_images: int = 120
    gpu_seconds: float = 93.25
    resets_at: datetime | None = datetime(2030, 1, 2, tzinfo=UTC)
    relax_used: int = 4
    relax_limit: int = 100


def test_quota_and_info_lines() -> None:
    assert quota_lines(_Status()) == [
        "Quota: 8 of 20 images used per day, 12 left",
        f"Resets <t:{int(datetime(2030, 1, 2, tzinfo=UTC).timestamp())}:R>",
        "Relax mode: 4 of 100 images today",
        "Jobs: 1 running, 2 queued",
        "Lifetime images: 120",
        "GPU time: 93.2 s",
    ]
    jobs = [_job(id=5, status=JobStatus.RUNNING, progress=30), _job(id=6)]
    text = info_content(_Status(period="total", resets_at=None), jobs, {6: 2})
    assert "used in total" in text
    assert "#5 a red fox (running, 30%)" in text
    assert "#6 a red fox (queued, position 2)" in text


def _noted(*notes: str) -> Job:
    request = GenerationRequest(prompt="a fox", seed=7, notes=notes)
    return _job(request=request)


def test_notes_show_in_one_short_line_under_the_job_message() -> None:
    content = job_content(_noted("--v 7: painted with the default model"))
    assert content == (
        "**a fox --seed 7** - <@42> (Waiting to start)\n"
        "-# Not as written: --v 7 (painted with the default model)"
    )
    assert job_content(_job()).count("\n") == 0


def test_many_notes_shorten_to_the_parameters_and_a_count() -> None:
    notes = [
        "--sref https://cdn.example.com/styles/reference-image.png: style reference images "
        "are not supported yet",
        "--exp 15: Midjourney's experimental aesthetics are not available here",
        *[
            f"--sw {n}: style weight applies to `--sref`, which is not supported yet"
            for n in range(30)
        ],
    ]
    line = job_content(_noted(*notes)).split("\n")[1]
    assert line.startswith("-# Not as written: --sref https://cdn.…, --exp 15, --sw 0, --sw 1, ")
    assert line.endswith(" more")
    assert len(line) <= 200
    listed = line.removeprefix("-# Not as written: ").split(", ")
    assert int(listed[-1].split()[0].lstrip("+")) == len(notes) - (len(listed) - 1)


def test_notes_cannot_format_or_mention() -> None:
    line = job_content(_noted("--sref https://x.example/@everyone/*a*: style")).split("\n")[1]
    assert "@everyone" not in line.replace("@\u200beveryone", "")


def test_a_long_prompt_with_notes_stays_within_the_message_limit() -> None:
    request = GenerationRequest(
        prompt="x " * 1200, seed=7, notes=("--v 7: painted with the default model",)
    )
    content = job_content(_job(request=request))
    assert len(content) <= MAX_CONTENT
    assert content.endswith(
        "(Waiting to start)\n-# Not as written: --v 7 (painted with the default model)"
    )
