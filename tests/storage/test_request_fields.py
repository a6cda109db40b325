"""The request's newer fields (notes, LoRAs, control, translate, draft) survive the job row."""

from __future__ import annotations

from bot.prompt import ParserOptions, parse
from storage.contract import Control, ControlKind, GenerationRequest, JobKind, JobSpec, SpeedMode
from storage.queue import JobQueue

ALICE = 1001


async def test_parsed_request_is_stored_with_its_notes(queue: JobQueue) -> None:
    [request] = parse(
        "https://example.com/a.png a fox --v 7 --sref 277118899 --lora tiny-style:0.5 "
        "--control canny:0.8 --draft --notr",
        options=ParserOptions(),
    )
    assert request.notes == (
        "--v 7: painted with the default model",
        "--sref 277118899: Midjourney style codes are not available here",
    )
    specs = [JobSpec(JobKind.IMAGINE, request, cost=4)]
    [job] = await queue.enqueue(ALICE, specs, interaction_id=77)
    stored = await queue.get(job.id)
    assert stored.request == request.with_seed(job.seed)
    assert stored.request.loras == (("tiny-style", 0.5),)
    assert stored.request.control == Control(ControlKind.CANNY, 0.8)
    assert (stored.request.mode, stored.request.translate) == (SpeedMode.DRAFT, False)


def test_rows_written_before_these_fields_read_with_their_defaults() -> None:
    old = {"prompt": "a fox", "segments": [["a fox", 1.0]], "mode": "fast", "seed": 3}
    request = GenerationRequest.from_dict(old)
    assert (request.loras, request.control, request.translate, request.notes) == (
        (),
        None,
        True,
        (),
    )
    assert GenerationRequest.from_dict(request.to_dict()) == request
